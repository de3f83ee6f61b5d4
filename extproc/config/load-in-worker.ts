// `serve` loads its config, and every hot reload re-reads it, in a short-lived worker thread
// (load-worker.ts) that validates it and exits: zod and the config schemas are ~8 MiB of heap,
// and an ES module is never unloaded, so importing them in the serving isolate would hold them
// for the process's life (and, with the old generation allowed to double under load, about
// twice that in peak RSS). The validated config crosses as a structured clone (plain data, see
// clone.test.ts); a ConfigError crosses as data and is rebuilt here, so what check-config,
// a failed start and a rejected reload print is unchanged.
import { Worker } from 'node:worker_threads';
import { ConfigError } from './config-error.ts';
import type { LoadedConfig } from './load.ts';
import type { Config } from './schema.ts';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './load-worker.ts' : './load-worker.js', import.meta.url);

export type Env = Record<string, string | undefined>;

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

/** loadConfigSources(path, env), run in a worker thread: the loaded config, or its ConfigError. */
export async function loadConfigInWorker(path: string, env: Env = process.env): Promise<LoadedConfig> {
  const reply = await runLoadWorker<Result<LoadedConfig>>({ kind: 'load', path, env: { ...env } });
  if (!reply.ok) throw rebuildError(reply.error);
  return reply.value;
}

/** The reload watcher's check of a config file's text, run in a worker thread. */
export function checkConfigInWorker(path: string, text: string, env: Env = process.env): Promise<CheckReply> {
  return runLoadWorker<CheckReply>({ kind: 'check', path, text, env: { ...env } });
}

/** Starts a worker for one request and settles with its one reply. The worker exits after it. */
function runLoadWorker<T>(request: LoadRequest): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let replied = false;
    const worker = new Worker(WORKER_URL, { workerData: request });
    worker.once('message', (reply: T) => {
      replied = true;
      resolve(reply);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (!replied) reject(new Error(`the config loader thread exited (code ${code}) without an answer`));
    });
  });
}
