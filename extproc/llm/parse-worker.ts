// A ParsePool worker thread: parses request bodies off the gate's event loop. Loaded by
// parse-pool.ts as a module (Node strips the types of this .ts file as it does for the gate).
import { parentPort } from 'node:worker_threads';
import { type ApiKind, type ParseLimits, parseRequestBody, type RequestParseResult } from './shapes.ts';

/** Main thread → worker. The body's buffer is transferred: the worker owns it. */
export interface ParseJob {
  id: number;
  kind: ApiKind;
  body: Uint8Array;
  limits: ParseLimits;
}

/** Worker → main thread: the result, or why parsing threw (a bug: parseRequestBody never throws). */
export type ParseReply = { id: number; result: RequestParseResult } | { id: number; error: string };

const port = parentPort;
if (port === null) throw new Error('parse-worker.ts runs as a worker thread');

port.on('message', (job: ParseJob) => {
  let reply: ParseReply;
  try {
    const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
    reply = { id: job.id, result: parseRequestBody(job.kind, body, job.limits) };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
});
