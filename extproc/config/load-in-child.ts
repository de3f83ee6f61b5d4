// `serve` loads its config, and every hot reload re-reads it, in a short-lived child process
// (load-child.ts) that validates it and exits: zod and the config schemas are ~8 MiB of heap,
// and an ES module is never unloaded, so importing them in the serving isolate would hold them
// for the process's life (and, with the old generation allowed to double under load, about
// twice that in peak RSS). A process, not a worker thread: a worker's isolate and malloc arena
// left ~30 MiB of RSS behind in the gate after it exited, a child leaves nothing (~145 ms a load
// either way, compiled). The validated config crosses as a structured clone (IPC's advanced
// serialization; plain data, see clone.test.ts); a ConfigError crosses as data and is rebuilt
// here, so what a failed start and a rejected reload print is unchanged.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './config-error.ts';
import type { LoadedConfig } from './load.ts';
import type { Config } from './schema.ts';

const CHILD = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './load-child.ts' : './load-child.js', import.meta.url),
);

export type Env = Record<string, string | undefined>;

/** How long a loader may take before it is killed and the load fails. A config or keys file
 * on a stalled network mount, or a FIFO nobody writes, would otherwise hold the load forever:
 * at start the gate would never listen, and on reload the watcher, which checks one change at
 * a time, would never check another. A compiled load takes ~0.15-0.2 s. */
export const LOADER_TIMEOUT_MS = 30_000;

export interface LoaderOptions {
  /** LOADER_TIMEOUT_MS unless given (tests). */
  timeoutMs?: number;
}

export type LoadRequest =
  | { kind: 'load'; path: string; env: Env }
  | { kind: 'check'; path: string; text: string; env: Env };

/** An error as data: a ConfigError keeps its message and problems; anything else (a bug) its
 * message and stack. */
export type ErrorData =
  | { configError: true; message: string; problems: string[] }
  | { configError: false; message: string; stack: string | undefined };

export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorData };

/** What the reload watcher learns from a config file's text (see watch.ts). */
export interface CheckReply {
  /** Set when the text is a valid config: the keys file it names, which the watcher follows. */
  follow?: { keysFile: string | undefined };
  /** The keys file's text, or a mark saying why it could not be read; what the watcher
   * compares beside the config text. */
  keysPart: string | undefined;
  result: Result<Config>;
}

export function errorData(err: unknown): ErrorData {
  if (err instanceof ConfigError) return { configError: true, message: err.message, problems: err.problems };
  return { configError: false, message: String(err), stack: err instanceof Error ? err.stack : undefined };
}

export function rebuildError(data: ErrorData): Error {
  if (data.configError) return new ConfigError('', data.problems, data.message);
  const err = new Error(data.message);
  if (data.stack !== undefined) err.stack = data.stack;
  return err;
}

/** loadConfigSources(path, env), run in a child process: the loaded config, or its ConfigError. */
export async function loadConfigInChild(
  path: string,
  env: Env = process.env,
  opts: LoaderOptions = {},
): Promise<LoadedConfig> {
  const reply = await runLoader<Result<LoadedConfig>>({ kind: 'load', path, env: { ...env } }, opts);
  if (!reply.ok) throw rebuildError(reply.error);
  return reply.value;
}

/** The reload watcher's check of a config file's text, run in a child process. */
export function checkConfigInChild(
  path: string,
  text: string,
  env: Env = process.env,
  opts: LoaderOptions = {},
): Promise<CheckReply> {
  return runLoader<CheckReply>({ kind: 'check', path, text, env: { ...env } }, opts);
}

/** How long a loader started ahead (prewarmLoader) waits for its request before it is let go. */
export const SPARE_LOADER_MS = 5_000;

/** Loader processes started, and how many were started ahead and then used (tests read it). */
export const loaderCounts = { started: 0, ahead: 0, aheadUsed: 0 };

/** A loader started ahead of its request, loading its modules meanwhile. */
let spare: ChildProcess | undefined;
let spareTimer: NodeJS.Timeout | undefined;

/** No execArgv: the gate's own flags (or a test's --eval) are not the loader's; NODE_OPTIONS in
 * the environment still reaches it. */
function startLoader(): ChildProcess {
  loaderCounts.started++;
  return fork(CHILD, [], { serialization: 'advanced', execArgv: [] });
}

/** Start the next check's loader now (the reload watcher calls it at a change event): its start
 * and module loading, most of a check's ~0.2-0.45 s, overlap the watcher's debounce instead of
 * following it. Unused, it is let go after `idleMs`; it never keeps the gate from exiting. */
export function prewarmLoader(idleMs = SPARE_LOADER_MS): void {
  if (spare === undefined) {
    const child = startLoader();
    loaderCounts.ahead++;
    spare = child;
    child.unref();
    child.channel?.unref();
    const gone = () => {
      if (spare === child) dropSpare();
    };
    child.once('exit', gone);
    child.once('error', gone);
  }
  clearTimeout(spareTimer);
  const child = spare;
  spareTimer = setTimeout(() => {
    if (spare !== child) return;
    dropSpare();
    child.kill();
  }, idleMs);
  spareTimer.unref();
}

/** The pid of the loader started ahead, while it waits (tests). */
export function spareLoaderPid(): number | undefined {
  return spare?.pid;
}

function dropSpare(): void {
  clearTimeout(spareTimer);
  spareTimer = undefined;
  spare = undefined;
}

/** The loader started ahead, if it is still there to take a request. */
function takeSpare(): ChildProcess | undefined {
  const child = spare;
  if (child === undefined) return undefined;
  dropSpare();
  if (child.exitCode !== null || child.signalCode !== null || !child.connected) return undefined;
  child.ref();
  child.channel?.ref();
  loaderCounts.aheadUsed++;
  return child;
}

/** Runs one request in a loader process (the one started ahead, else a new one) and settles with
 * its one reply; the loader exits after it, or is killed when it has not answered within the
 * timeout. */
function runLoader<T>(request: LoadRequest, opts: LoaderOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? LOADER_TIMEOUT_MS;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const child = takeSpare() ?? startLoader();
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      settle(() =>
        reject(
          new Error(
            `the config loader did not answer within ${timeoutMs} ms (is ${request.path}, or a file it names, a FIFO or on a stalled mount?)`,
          ),
        ),
      );
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('message', (reply) => settle(() => resolve(reply as T)));
    child.once('error', (err) => settle(() => reject(err)));
    child.once('exit', (code, signal) =>
      settle(() => reject(new Error(`the config loader exited (${signal ?? `code ${code}`}) without an answer`))),
    );
    child.send(request);
  });
}
