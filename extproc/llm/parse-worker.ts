// A ParsePool worker thread: parses request bodies off the gate's event loop. Loaded by
// parse-pool.ts as a module (Node strips the types of this .ts file as it does for the gate).
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { CollectedHits } from '../dlp/gate/body-scan.ts';
import type { DlpScanJob } from '../dlp/gate/scan-job.ts';
import { collectInjection, type InjectionJob, type InjectionScan } from '../guard/gate/collect.ts';
import { type CountJob, countJob, type TokenCount } from '../metering/count.ts';
import { type ApiKind, type ParseLimits, parseRequestBody, type RequestParseResult } from './shapes.ts';

/** Main thread → worker. The body's buffer is transferred: the worker owns it. */
export interface ParseJob {
  id: number;
  op?: 'parse';
  kind: ApiKind;
  body: Uint8Array;
  limits: ParseLimits;
}

/** Worker → main thread: the result, or why parsing, counting or scanning threw (a parse never
 * does; a scan that throws fails the request closed). */
export type ParseReply =
  | { id: number; result: RequestParseResult | TokenCount | CollectedHits | InjectionScan }
  | { id: number; error: string };

/** Count a request's tokens (metering, when upstream reported none). */
export interface CountMessage {
  id: number;
  op: 'count';
  job: CountJob;
}

/** A request body's DLP scan (extproc/dlp/gate/scan-job.ts). The body's buffer is transferred. */
export interface DlpMessage {
  id: number;
  op: 'dlp';
  job: DlpScanJob;
  body: Uint8Array;
}

/** A request body's prompt-injection scoring (extproc/guard/gate/collect.ts). */
export interface InjectionMessage {
  id: number;
  op: 'injection';
  job: InjectionJob;
  body: Uint8Array;
}

const port = parentPort;
if (port === null) throw new Error('parse-worker.ts runs as a worker thread');

/** The parse threads yield the CPU to the event loop that serves every other request: a tenant
 * sending hostile bodies then slows its own parses, not the others' requests. On Linux a
 * thread's niceness is its own (setpriority on pid 0 means the calling thread). */
export const WORKER_NICENESS = 10;
try {
  setPriority(0, WORKER_NICENESS);
} catch {
  // Not permitted here (a platform where this is per process, or a restricted container): the
  // worker still runs, only at the gate's own priority.
}

/** The DLP engine, loaded on the first scan job: most gates never send one, and loading it
 * (detectors, phone metadata) in every worker at start-up competes with the gate for the CPU
 * just when it starts serving. */
let scanJobs: Promise<typeof import('../dlp/gate/scan-job.ts')> | undefined;

function scan(job: DlpMessage): void {
  scanJobs ??= import('../dlp/gate/scan-job.ts');
  scanJobs.then(
    (m) => {
      let reply: ParseReply;
      try {
        const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
        reply = { id: job.id, result: m.runScanJob(job.job, body) };
      } catch (e) {
        reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
      }
      port!.postMessage(reply);
    },
    (e: unknown) => port!.postMessage({ id: job.id, error: `DLP engine failed to load: ${String(e)}` }),
  );
}

port.on('message', (job: ParseJob | CountMessage | DlpMessage | InjectionMessage) => {
  let reply: ParseReply;
  try {
    if (job.op === 'injection') {
      const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
      port.postMessage({ id: job.id, result: collectInjection(body, job.job) } satisfies ParseReply);
      return;
    }
    if (job.op === 'dlp') {
      scan(job);
      return;
    }
    if (job.op === 'count') {
      port.postMessage({ id: job.id, result: countJob(job.job) } satisfies ParseReply);
      return;
    }
    const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
    reply = { id: job.id, result: parseRequestBody(job.kind, body, job.limits) };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
});
