// Envoy starts its per-message timer (message_timeout, 200 ms) when it sends a message; the gate
// sees a 4 MiB request body only once its last byte is in, and on a connection that carries
// other requests' bodies too that can be most of the 200 ms. Found by the isolation bench's
// smoke: a closed loop of 4 MiB bodies on a 2-CPU host got some of them answered 504 by Envoy,
// the gate's override_message_timeout arriving after Envoy's timer. The gate now asks Envoy to
// wait at a large message's first bytes, and counts that message's deadline from then.
// Driven over raw HTTP/2, so a body can be held half sent, as a busy connection holds it.
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARRIVING_NOTICE_BYTES } from '../../extproc/server/h2-grpc.ts';
import {
  BodySendMode,
  decodeProcessingResponse,
  encodeProcessingRequest,
  type ProcessingResponse,
} from '../../extproc/server/protocol.ts';
import { chatBody, chatHeadersFor, headers } from '../harness/ext-proc-client.ts';
import { makeKey } from '../harness/gate.ts';
import { grpcFrame, grpcReader } from '../harness/grpc-frame.ts';
import { type InProcessGate, startInProcessGate } from '../harness/in-process-gate.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const SLOW_MS = 600;

let gate: InProcessGate;
let session: ClientHttp2Session;
beforeAll(async () => {
  gate = await startInProcessGate([alice], {
    extra: { server: { messageDeadlineMs: 100, maxMessageDeadlineMs: SLOW_MS } },
  });
  session = connect(`http://127.0.0.1:${gate.server.grpcPort}`);
  session.on('error', () => undefined);
});
afterAll(async () => {
  session?.close();
  await gate?.stop();
});

/** One ext_proc stream over raw HTTP/2: frames written as given, answers decoded as they come. */
function open(): { s: ClientHttp2Stream; next: (ms?: number) => Promise<ProcessingResponse> } {
  const s = session.request({
    ':method': 'POST',
    ':path': '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  s.on('error', () => undefined);
  return { s, next: grpcReader(s, decodeProcessingResponse).next };
}

const overrideMs = (a: ProcessingResponse) =>
  Number(a.overrideMessageTimeout!.seconds) * 1000 + a.overrideMessageTimeout!.nanos! / 1e6;

/** Request headers (BUFFERED body), answered; then the framed body message, not yet sent. */
async function headersThenBody(
  id: string,
  bytes: number,
): Promise<{ s: ClientHttp2Stream; next: ReturnType<typeof open>['next']; frame: Buffer }> {
  const { s, next } = open();
  s.write(
    grpcFrame(
      encodeProcessingRequest({
        requestHeaders: headers(chatHeadersFor(alice.key, { 'x-request-id': id }), false),
        protocolConfig: { requestBodyMode: BodySendMode.BUFFERED, responseBodyMode: 0 },
      }),
    ),
  );
  expect((await next()).requestHeaders).toBeDefined();
  const body = chatBody({ filler: 'x'.repeat(bytes) });
  const frame = grpcFrame(encodeProcessingRequest({ requestBody: { body: Buffer.from(body), endOfStream: true } }));
  return { s, next, frame };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a large request body asks Envoy to wait at its first bytes', () => {
  it('override_message_timeout comes while the body is half sent; once whole, it is answered with no second override', async () => {
    const { s, next, frame } = await headersThenBody('notice-1', 1024 * 1024);
    s.write(frame.subarray(0, 64 * 1024));
    const first = await next();
    expect(first.overrideMessageTimeout).toBeDefined();
    // A little more than the gate will take, so that its own deadline answers first.
    expect(overrideMs(first)).toBe(SLOW_MS + 50);
    s.write(frame.subarray(64 * 1024));
    const answer = await next();
    expect(answer.requestBody).toBeDefined();
    expect(answer.overrideMessageTimeout).toBeUndefined();
    s.close(0x8);
    const recs = await gate.waitAudit(1);
    expect(recs.find((r) => r.request_id === 'notice-1')).toMatchObject({ outcome: 'cancelled' });
  });

  it('its deadline counts from the first bytes, as Envoy\u2019s extended timer does: the rest held past it is answered 503 at once', async () => {
    const { s, next, frame } = await headersThenBody('notice-2', 512 * 1024);
    const t0 = performance.now();
    s.write(frame.subarray(0, 64 * 1024));
    expect((await next()).overrideMessageTimeout).toBeDefined();
    // Envoy would answer 504 itself at SLOW_MS + 50 after the notice; the gate's own deadline
    // (SLOW_MS) has passed once the rest arrives, so its 503 goes first.
    await sleep(SLOW_MS + 20);
    s.write(frame.subarray(64 * 1024));
    const answer = await next();
    expect(answer.immediateResponse?.status?.code).toBe(503);
    expect(performance.now() - t0).toBeLessThan(SLOW_MS + 400);
    s.close(0x8);
    const recs = await gate.waitAudit(2);
    expect(recs.find((r) => r.request_id === 'notice-2')).toMatchObject({ status: 503 });
  });

  it('a body under the notice size asks only once it is whole and going to the parse pool', async () => {
    const { s, next, frame } = await headersThenBody('notice-3', ARRIVING_NOTICE_BYTES / 2);
    s.write(frame.subarray(0, 16 * 1024));
    await sleep(50);
    s.write(frame.subarray(16 * 1024));
    const first = await next();
    expect(first.overrideMessageTimeout).toBeDefined();
    expect((await next()).requestBody).toBeDefined();
    s.close(0x8);
    await gate.waitAudit(3);
  });
});
