// Child processes started by tests and the quickstart: output captured for assertions and
// failure messages (and copied to a log file when asked), stopped at teardown, and tied to the
// process that started them so that however it ends, they end too.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { GiveUp } from './ports.ts';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** util-linux's setpriv asks the kernel to send the child SIGTERM when its parent dies, SIGKILL
 * and crashes included, which no exit handler here can cover (vitest kills its workers without
 * an 'exit' event): an Envoy or gate outliving its test run or quickstart keeps its ports and
 * keeps serving. Linux only; elsewhere children are started as they are. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<number | null>;

  /** `log`: a file that receives everything the child writes to stdout and stderr. */
  constructor(
    name: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
    opts: { log?: string; cwd?: string } = {},
  ) {
    this.name = name;
    const [file, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'TERM', '--', cmd, ...args]] : [cmd, args];
    this.child = spawn(file, argv, { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    const log: WriteStream | undefined = opts.log ? createWriteStream(opts.log, { flags: 'a' }) : undefined;
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      log?.write(d);
    });
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      log?.write(d);
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        resolve(code ?? (signal ? 128 : null));
      }),
    );
    // 'close', not 'exit': by then all output is read. (Waiting for it in `exited` would wait
    // forever when a grandchild that outlived the child still holds the pipes.)
    if (log) this.child.once('close', () => log.end());
  }

  get pid(): number | undefined {
    return this.child.pid;
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

  /** The last line the child wrote to stderr: usually why it stopped. */
  lastErrorLine(): string {
    return this.stderr.trimEnd().split('\n').at(-1)?.trim() ?? '';
  }

  describe(): string {
    return `--- ${this.name} stdout ---\n${this.stdout.slice(-4000)}\n--- ${this.name} stderr ---\n${this.stderr.slice(-4000)}`;
  }
}

/** The process a waitFor was waiting on has exited: waiting longer cannot help. */
export class ProcExited extends GiveUp {
  readonly proc: Proc;
  constructor(proc: Proc) {
    super(`${proc.name} exited\n${proc.describe()}`);
    this.name = 'ProcExited';
    this.proc = proc;
  }
}
