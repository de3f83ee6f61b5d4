// A ParsePool worker thread: parses request bodies off the gate's event loop. Loaded by
// parse-pool.ts as a module (Node strips the types of this .ts file as it does for the gate).
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { CollectedHits } from '../dlp/gate/body-scan.ts';
import { type DlpScanJob, runScanJob } from '../dlp/gate/scan-job.ts';
import { type ApiKind, type ParseLimits, parseRequestBody, type RequestParseResult } from './shapes.ts';

/** Main thread → worker: a parse, or a DLP scan (dlp set). The body's buffer is transferred:
 * the worker owns it. */
export interface ParseJob {
  id: number;
  kind: ApiKind;
  body: Uint8Array;
  limits: ParseLimits;
  dlp?: DlpScanJob;
}

/** Worker → main thread: the result, or why parsing or scanning threw (a parse never does; a
 * scan that throws fails the request closed). */
export type ParseReply =
  | { id: number; result: RequestParseResult }
  | { id: number; hits: CollectedHits }
  | { id: number; error: string };

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

port.on('message', (job: ParseJob) => {
  let reply: ParseReply;
  try {
    const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
    reply =
      job.dlp !== undefined
        ? { id: job.id, hits: runScanJob(job.dlp, body) }
        : { id: job.id, result: parseRequestBody(job.kind, body, job.limits) };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
});
