import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { speedUpTierUp } from './tier-up.ts';

const run = promisify(execFile);
const MODULE = new URL('./tier-up.ts', import.meta.url).href;

/** Whether `work`, called 5000 times one request-like turn at a time (no loop inside it to
 * optimize on-stack), is optimized with TurboFan in a fresh process, with or without the
 * gate's setting made at run time (as `serve` makes it). */
async function turbofanned(speedUp: boolean): Promise<boolean> {
  const script = `
    const { speedUpTierUp } = await import(${JSON.stringify(MODULE)});
    if (${speedUp}) speedUpTierUp([]);
    function work(o) { return o.a * 2 + o.b; }
    let s = 0;
    for (let i = 0; i < 5000; i++) { s += work({ a: i, b: 1 }); await null; }
    // A concurrent compile is installed by a later call: time for it on a busy machine.
    for (let i = 0; i < 20; i++) { await new Promise((r) => setTimeout(r, 50)); s += work({ a: i, b: 1 }); }
    console.log(s);`;
  const { stdout } = await run(process.execPath, ['--trace-opt', '--input-type=module', '-e', script], {
    timeout: 30_000,
  });
  return /completed optimizing \S+ <JSFunction work .*target TURBOFAN/.test(stdout);
}

describe('speedUpTierUp', () => {
  it('has V8 optimize a function called 5000 times with TurboFan, which its default does not', async () => {
    expect(await turbofanned(false)).toBe(false);
    expect(await turbofanned(true)).toBe(true);
  });

  it("leaves a threshold on node's command line alone, however it is spelled", () => {
    expect(speedUpTierUp(['--invocation-count-for-turbofan=3000'])).toBe(false);
    expect(speedUpTierUp(['--invocation_count_for_turbofan=200'])).toBe(false);
    expect(speedUpTierUp(['--invocation-count-for-turbofan', '500'])).toBe(false);
  });
});
