// The lm-gate command line as a user runs it: `node bin/lm-gate.js ARGS` in a child process,
// its exit code, stdout and stderr. A command that does not exit within the timeout is killed,
// and the assertions on its result say so.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './envoy.ts';

export const LM_GATE_BIN = join(ROOT, 'bin', 'lm-gate.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from start until its output closed. */
  ms: number;
  /** performance.now() when the process exited (before its output closed). */
  exitedAt: number;
}

export function runCli(args: string[], timeoutMs = 15_000): Promise<CliRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LM_GATE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let exitedAt = Number.NaN;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', () => (exitedAt = performance.now()));
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started, exitedAt });
    });
  });
}
