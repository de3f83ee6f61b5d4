import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { speedUpTierUp } from './tier-up.ts';

const run = promisify(execFile);
const MODULE = new URL('./tier-up.ts', import.meta.url).href;

/** V8's %GetOptimizationStatus bits for code optimized by Maglev and by TurboFan (V8's
 * runtime-test.cc). */
const MAGLEVVED = 1 << 5;
const TURBOFANNED = 1 << 6;

/** Whether `work` is optimized with TurboFan in a fresh process, with or without the gate's
 * setting made at run time (as `serve` makes it), once it has run 3000 times in Maglev's code,
 * one request-like turn at a time (no loop inside it to optimize on-stack). Compiles are
 * concurrent and installed by a later call: the script calls on, waiting for each tier, for up
 * to 2 s each (a loaded machine), so what decides is the number of calls, not the machine. */
async function turbofanned(speedUp: boolean): Promise<boolean> {
  const script = `
    const { speedUpTierUp } = await import(${JSON.stringify(MODULE)});
    if (${speedUp}) speedUpTierUp([]);
    function work(o) { return o.a * 2 + o.b; }
    const tier = () => %GetOptimizationStatus(work);
    const pause = (ms) => new Promise((r) => setTimeout(r, ms));
    let s = 0;
    for (let i = 0; i < 500; i++) { s += work({ a: i, b: 1 }); await null; }
    for (let i = 0; i < 200 && !(tier() & ${MAGLEVVED | TURBOFANNED}); i++) { await pause(10); s += work({ a: i, b: 1 }); }
    for (let i = 0; i < 3000; i++) { s += work({ a: i, b: 1 }); await null; }
    for (let i = 0; i < 40 && !(tier() & ${TURBOFANNED}); i++) { await pause(50); s += work({ a: i, b: 1 }); }
    console.log(s, (tier() & ${TURBOFANNED}) !== 0);`;
  const { stdout } = await run(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], {
    timeout: 30_000,
  });
  return stdout.trim().endsWith('true');
}

describe('speedUpTierUp', () => {
  it('has V8 optimize a function with TurboFan after 3000 calls in Maglev code, which its default does not', async () => {
    expect(await turbofanned(false)).toBe(false);
    expect(await turbofanned(true)).toBe(true);
  });

  it("leaves a threshold on node's command line alone, however it is spelled", () => {
    expect(speedUpTierUp(['--invocation-count-for-turbofan=3000'])).toBe(false);
    expect(speedUpTierUp(['--invocation_count_for_turbofan=200'])).toBe(false);
    expect(speedUpTierUp(['--invocation-count-for-turbofan', '500'])).toBe(false);
  });
});
