// Parses big request bodies on worker threads, so that a 4 MiB body (or a hostile one) never
// holds the event loop that every other request's headers, chunks and timers go through. Small
// bodies, the common case, are parsed inline: a worker round trip costs more than their scan.
import { Worker } from 'node:worker_threads';
import type { CollectedHits } from '../dlp/gate/body-scan.ts';
import type { DlpScanJob } from '../dlp/gate/scan-job.ts';
import type { InjectionJob, InjectionScan } from '../guard/gate/collect.ts';
import type { CountJob, TokenCount } from '../metering/count.ts';
import type { DlpMessage, InjectionMessage, ParseJob, ParseReply } from './parse-worker.ts';
import { type ApiKind, type ParseLimits, parseRequestBody, type RequestParseResult } from './shapes.ts';

/** Bodies up to this size are parsed inline, on the event loop. Set from bench/json-scan.ts on
 * this project's dev machine (Node 24): the slowest body built there, one object of distinct
 * never-seen non-ASCII keys, parses in ~0.75 ms (p99 0.8 ms) at 24 KiB and ~1 ms (p99 1.7 ms) at
 * 32 KiB; typical chat bodies take ~0.05 ms at 24 KiB (450+ MB/s). */
export const INLINE_PARSE_MAX_BYTES = 24 * 1024;

/** The worker module: parse-worker.ts beside this file when run from source, .js once built. */
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './parse-worker.ts' : './parse-worker.js',
  import.meta.url,
);

export interface ParsePoolOptions {
  /** Most worker threads: each started when a job finds none free, replaced the same way when
   * one dies. */
  threads: number;
  /** The worker module (tests). */
  workerUrl?: URL;
}

interface Job {
  id: number;
  /** Until posted: what the worker gets (its buffers are transferred). */
  work: WorkMessage | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the reply's result, typed by the method that queued the job
  resolve: (result: any) => void;
  reject: (error: unknown) => void;
  settled: boolean;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  dead: boolean;
}

function abortError(signal: AbortSignal): DOMException {
  const reason: unknown = signal.reason;
  return reason instanceof DOMException && reason.name === 'AbortError'
    ? reason
    : new DOMException('The parse was aborted', 'AbortError');
}

/** Main thread → worker: a request body to parse, a request's tokens to count, or a body to
 * scan for DLP. */
export type WorkMessage =
  | ({ op?: 'parse' } & Omit<ParseJob, 'id'>)
  | { op: 'count'; job: CountJob }
  | Omit<DlpMessage, 'id'>
  | Omit<InjectionMessage, 'id'>;

export class ParsePool {
  private readonly threads: number;
  private readonly url: URL;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private seq = 0;
  private closed = false;

  constructor(opts: ParsePoolOptions) {
    this.threads = Math.max(1, Math.floor(opts.threads));
    this.url = opts.workerUrl ?? WORKER_URL;
    // No thread yet: an idle worker isolate costs ~14 MiB of RSS, and a gate whose bodies all
    // stay under INLINE_PARSE_MAX_BYTES (whose stages count and scan inline) never needs one.
    // The first job that needs a thread waits for it to boot (~30 ms compiled, more from
    // source), inside the slow path's own deadline (server.maxMessageDeadlineMs, 1.5 s).
  }

  /** Worker threads running now (started on demand, at most `threads`). */
  get started(): number {
    return this.slots.length;
  }

  /** Parse on a worker, first come first served. Rejects with an AbortError when `signal` aborts
   * first (a queued job is dropped; a running one's result is), with an Error when the worker
   * dies or the pool is closed. */
  parse(kind: ApiKind, body: Buffer, limits: ParseLimits, signal?: AbortSignal): Promise<RequestParseResult> {
    if (this.closed) return Promise.reject(new Error('the parse pool is closed'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    // A copy of just the body's bytes: a Buffer from protobufjs may be a view into a larger
    // buffer, which must neither be transferred (detached under its owner) nor cloned whole.
    const copy = new Uint8Array(body.byteLength);
    copy.set(body);
    const plain: ParseLimits = { maxDepth: limits.maxDepth, maxTokensSlot: limits.maxTokensSlot === true };
    return this.submit<RequestParseResult>({ kind, body: copy, limits: plain }, signal);
  }

  /** Count a request's tokens on a worker (metering, when upstream reported no usage): the
   * encodings are loaded in the worker threads, never in the caller's. The job's buffers are
   * transferred: the caller must not use them after. */
  count(job: CountJob, signal?: AbortSignal): Promise<TokenCount> {
    if (this.closed) return Promise.reject(new Error('the parse pool is closed'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return this.submit<TokenCount>({ op: 'count', job }, signal);
  }

  /** A request body's DLP scan (extproc/dlp/gate/scan-job.ts), on the same threads and queue. */
  scanDlp(job: DlpScanJob, body: Buffer, signal?: AbortSignal): Promise<CollectedHits> {
    if (this.closed) return Promise.reject(new Error('the parse pool is closed'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const copy = new Uint8Array(body.byteLength);
    copy.set(body);
    return this.submit<CollectedHits>({ op: 'dlp', job, body: copy }, signal);
  }

  /** A request body's prompt-injection scoring (extproc/guard/gate/collect.ts), same queue. */
  scanInjection(job: InjectionJob, body: Buffer, signal?: AbortSignal): Promise<InjectionScan> {
    if (this.closed) return Promise.reject(new Error('the parse pool is closed'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const copy = new Uint8Array(body.byteLength);
    copy.set(body);
    return this.submit<InjectionScan>({ op: 'injection', job, body: copy }, signal);
  }

  private submit<T>(work: WorkMessage, signal: AbortSignal | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        id: ++this.seq,
        work,
        signal,
        onAbort: undefined,
        resolve,
        reject,
        settled: false,
      };
      if (signal !== undefined) {
        job.onAbort = () => this.abort(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Stop the workers; jobs not finished reject. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('the parse pool is closed');
    for (const job of this.queue.splice(0)) this.settle(job, () => job.reject(err));
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      slot.dead = true;
      const job = slot.job;
      if (job !== undefined) this.settle(job, () => job.reject(err));
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private abort(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i !== -1) this.queue.splice(i, 1);
    // A running job: its worker finishes it, and the result is dropped.
    this.settle(job, () => job.reject(abortError(job.signal!)));
  }

  private settle(job: Job, fn: () => void): void {
    if (job.settled) return;
    job.settled = true;
    job.work = undefined;
    if (job.onAbort !== undefined) job.signal!.removeEventListener('abort', job.onAbort);
    fn();
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (slot === undefined) {
        if (this.slots.length >= this.threads) return;
        slot = this.spawn();
      }
      const job = this.queue.shift()!;
      const work = job.work!;
      job.work = undefined;
      slot.job = job;
      slot.worker.postMessage({ id: job.id, ...work }, transferList(work));
      // Busy, it keeps the process alive until it answers, as any pending I/O would.
      slot.worker.ref();
    }
  }

  private spawn(): Slot {
    const worker = new Worker(this.url);
    const slot: Slot = { worker, job: undefined, dead: false };
    this.slots.push(slot);
    worker.on('message', (reply: ParseReply) => {
      const job = slot.job;
      if (job === undefined || job.id !== reply.id) return;
      slot.job = undefined;
      worker.unref();
      if ('error' in reply) this.settle(job, () => job.reject(new Error(`parse worker failed: ${reply.error}`)));
      else this.settle(job, () => job.resolve(reply.result));
      this.pump();
    });
    worker.on('messageerror', (e) => {
      const job = slot.job;
      slot.job = undefined;
      worker.unref();
      if (job !== undefined)
        this.settle(job, () => job.reject(new Error(`parse worker reply unreadable: ${e.message}`)));
      this.pump();
    });
    const lost = (why: string): void => {
      if (slot.dead) return;
      slot.dead = true;
      const i = this.slots.indexOf(slot);
      if (i !== -1) this.slots.splice(i, 1);
      const job = slot.job;
      slot.job = undefined;
      if (job !== undefined) this.settle(job, () => job.reject(new Error(`parse worker ${why}`)));
      // A replacement starts with the next job.
      this.pump();
    };
    worker.on('error', (e) => lost(`crashed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited (code ${code})`));
    // Idle, never what keeps the process alive (unref after adding listeners, which ref it).
    worker.unref();
    return slot;
  }
}

/** The buffers a message hands over to the worker (each a copy the caller no longer uses). */
function transferList(work: WorkMessage): ArrayBuffer[] {
  if (work.op !== 'count') return [work.body.buffer as ArrayBuffer];
  // count: its request and response buffers, once each
  const out: ArrayBuffer[] = [];
  for (const b of [work.job.request, work.job.responseJson])
    if (b !== undefined && !out.includes(b.buffer as ArrayBuffer)) out.push(b.buffer as ArrayBuffer);
  return out;
}

/** Parse a request body: inline when small (or without a pool), a plain result and no promise on
 * that hot path; else on the pool. `signal` is asked for only on the pool path, so a small body
 * never makes the caller create an AbortController. */
export function parseRequest(
  pool: ParsePool | undefined,
  kind: ApiKind,
  body: Buffer,
  limits: ParseLimits,
  signal?: () => AbortSignal,
): RequestParseResult | Promise<RequestParseResult> {
  if (pool === undefined || body.length <= INLINE_PARSE_MAX_BYTES) return parseRequestBody(kind, body, limits);
  return pool.parse(kind, body, limits, signal?.());
}
