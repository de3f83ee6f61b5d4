import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { IDLE_CODE_FLAG, keepCodeThroughIdle } from './idle-code.ts';

const run = promisify(execFile);

describe('keepCodeThroughIdle', () => {
  // v8.setFlagsFromString ignores a flag V8 does not know: a Node release that renamed or dropped
  // this one would leave the gate silently back on the default. What the flag does to an idle gate
  // takes V8's 100 s watchdog to show, so `npm run bench:ab -- --idle 200` measures it, not this.
  it("names a flag this Node's V8 has, on by default", async () => {
    const { stdout } = await run(process.execPath, ['--v8-options'], { maxBuffer: 16 * 1024 * 1024 });
    const name = IDLE_CODE_FLAG.replace(/^--no-/, '--');
    const entry = stdout.split('\n').findIndex((l) => l.trim().startsWith(`${name} `));
    expect(entry).toBeGreaterThan(-1);
    expect(stdout.split('\n')[entry + 1]).toContain(`default: ${name}`);
  });

  it("leaves the setting on node's command line alone, however it is spelled", () => {
    expect(keepCodeThroughIdle(['--memory-reducer-favors-memory'])).toBe(false);
    expect(keepCodeThroughIdle(['--no-memory-reducer-favors-memory'])).toBe(false);
    expect(keepCodeThroughIdle(['--memory_reducer_favors_memory'])).toBe(false);
    expect(keepCodeThroughIdle(['--no_memory_reducer_favors_memory'])).toBe(false);
  });

  it('sets it otherwise', () => {
    expect(keepCodeThroughIdle(['--max-semi-space-size=8'])).toBe(true);
  });
});
