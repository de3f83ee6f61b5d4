// Child processes started by tests: output captured for assertions and failure messages,
// always killed at teardown (and on harness exit, so a failed run leaves nothing behind).
import { type ChildProcess, spawn } from 'node:child_process';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<number | null>;

  constructor(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.name = name;
    this.child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        resolve(code ?? (signal ? 128 : null));
      }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the exit code. */
  wait(): Promise<number | null> {
    return this.exited;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  describe(): string {
    return `--- ${this.name} stdout ---\n${this.stdout.slice(-4000)}\n--- ${this.name} stderr ---\n${this.stderr.slice(-4000)}`;
  }
}
