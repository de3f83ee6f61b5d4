// What the three observers saw of one request, for the e2e regression tests: the model server
// (what reached it, by x-request-id, which Envoy keeps when the client sends one), the gate's
// audit (its records for an id, or the records of the ext_proc streams a request opened when it
// has no id the gate could read) and the client's SSE stream.
import { expect } from 'vitest';
import type { ReceivedRequest } from '../mock/model-server.ts';
import { waitFor } from './ports.ts';
import type { Stack } from './stack.ts';

/** The mock's records of requests carrying this x-request-id, cut uploads included. */
export function upstreamFor(stack: Stack, requestId: string): ReceivedRequest[] {
  return stack.mock.received.filter((r) => r.headers['x-request-id'] === requestId);
}

/** Waits until what Envoy already sent the model server has landed: a moment for bytes in
 * flight, then until no upload is still arriving (a cut one is recorded when its socket closes). */
export async function upstreamSettled(stack: Stack): Promise<void> {
  await new Promise((r) => setTimeout(r, 100));
  await waitFor(
    'the model server to finish its uploads',
    async () => (stack.mock.uploading === 0 ? true : undefined),
    5000,
  );
}

/** The mock's records for this x-request-id once everything sent to it has landed. */
export async function settledUpstreamFor(stack: Stack, requestId: string): Promise<ReceivedRequest[]> {
  await upstreamSettled(stack);
  return upstreamFor(stack, requestId);
}

/** A record in a line, for failure messages: "complete|cut <bytes> B: <start of the body>". */
export function describeUpstream(r: ReceivedRequest): string {
  return `${r.complete ? 'complete' : 'cut'} ${r.body.length} B: ${r.body.toString('utf8', 0, 120)}`;
}

/** Every audit record with this request id, once at least one is written. */
export async function auditRecordsFor(stack: Stack, requestId: string): Promise<Record<string, any>[]> {
  await stack.gate.auditFor(requestId);
  return (await stack.gate.audit()).filter((r) => r.request_id === requestId);
}

/** Envoy's count of ext_proc streams opened so far (one per HTTP stream that reached the filter). */
export async function extProcStreamsStarted(stack: Stack): Promise<number> {
  const m = /^http\.llm\.ext_proc\.streams_started: (\d+)$/m.exec(await stack.envoy.stats());
  return m ? Number(m[1]) : 0;
}

/**
 * Runs `request` and returns its result with the audit records of the ext_proc streams it
 * opened, found by count rather than id: Envoy's own replies (a missing Host, a codec error)
 * reach the gate as response_headers with no request_headers, so without x-request-id. The gate
 * audits every stream once; `streams - records.length` records did not come within 3 s (a
 * stream Envoy resets at once may never reach the gate's handler).
 */
export async function withGateRecords<T>(
  stack: Stack,
  request: () => Promise<T>,
): Promise<{ result: T; streams: number; records: Record<string, any>[] }> {
  const before = (await stack.gate.audit()).length;
  const streamsBefore = await extProcStreamsStarted(stack);
  const result = await request();
  // Envoy counts the stream when it opens it; give a local reply a moment to reach the filter.
  await new Promise((r) => setTimeout(r, 100));
  const streams = (await extProcStreamsStarted(stack)) - streamsBefore;
  const deadline = Date.now() + 3000;
  let audit = await stack.gate.audit();
  while (audit.length < before + streams && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    audit = await stack.gate.audit();
  }
  return { result, streams, records: audit.slice(before) };
}

/** SSE text → the data payloads (`data: [DONE]` included), checking `data: ...\n\n` framing. */
export function sseData(text: string): string[] {
  if (!text.endsWith('\n\n'))
    throw new Error(`SSE stream does not end with a blank line: ${JSON.stringify(text.slice(-80))}`);
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((e) => {
      if (!e.startsWith('data: ')) throw new Error(`not an SSE data event: ${JSON.stringify(e.slice(0, 80))}`);
      return e.slice('data: '.length);
    });
}

/** The one audit record of a request, asserting that there is exactly one (the list shows
 * status, outcome and failure when there are more). */
export async function onlyRecord(stack: Stack, id: string): Promise<Record<string, any>> {
  const recs = await auditRecordsFor(stack, id);
  expect(recs.map((r) => `${r.status} ${r.outcome} ${r.failure}`)).toHaveLength(1);
  return recs[0]!;
}
