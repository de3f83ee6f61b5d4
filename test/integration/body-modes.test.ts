// Body modes, trailers, early answers and the audit's status, over a real gRPC stream driven the
// way Envoy 1.40 drives it (protocol_config in the first message, bodies by mode, trailers by
// mode, local replies through the encoder path). The real-Envoy tests under test/e2e/ prove the
// same points through the binary; these pin each message the gate answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineStage } from '../../extproc/pipeline/stage.ts';
import { BodySendMode, HeaderSendMode } from '../../extproc/server/protocol.ts';
import {
  type Answer,
  chatBody,
  chatHeadersFor,
  requestBody,
  requestHeaders,
  responseBody,
  responseHeaders,
  sse,
} from '../harness/ext-proc-client.ts';
import { makeKey } from '../harness/gate.ts';
import { gateForFile, type InProcessGate, startInProcessGate } from '../harness/in-process-gate.ts';
import { waitFor } from '../harness/ports.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const bob = makeKey('bob', { tenant: 'globex', models: ['mock-small'] });

const chatHeaders = (key = alice.key, extra: Record<string, string> = {}) => chatHeadersFor(key, extra);
const mode = (requestBodyMode: number) => ({ protocolConfig: { requestBodyMode, responseBodyMode: 0 } });
const usage = { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 };
const errorCode = (a: Answer) => JSON.parse(Buffer.from(a.immediateResponse!.body!).toString()).error.code;
const removed = (a: Answer | undefined, phase: 'requestHeaders' | 'responseHeaders' | 'requestBody') =>
  a?.[phase]?.response?.headerMutation?.removeHeaders ?? [];

const shared = gateForFile([alice, bob]);
const expectAudit = shared.expectAudit;

describe('request bodies are judged whole before any byte goes upstream', () => {
  it('BUFFERED: a body followed by trailers (end_of_stream false) is the whole body, judged and refused', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(bob.key), false, mode(BodySendMode.BUFFERED)));
    const a = await s.exchange(requestBody(chatBody({ model: 'mock-large' }), false));
    expect(a.immediateResponse?.status.code).toBe(403);
    expect(errorCode(a)).toBe('model_not_allowed');
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ status: 403, outcome: 'rejected', gen_ai: { request: { model: 'mock-large' } } });
  });

  it('BUFFERED with trailers: an allowed body is rewritten (include_usage) and the trailers pass', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.BUFFERED)));
    const a = await s.exchange(requestBody(chatBody({ stream: true }), false));
    const sent = JSON.parse(Buffer.from(a.requestBody!.response!.bodyMutation!.body!).toString());
    expect(sent.stream_options).toEqual({ include_usage: true });
    const t = await s.exchange({ requestTrailers: { trailers: { headers: [] } } });
    expect(t.response).toBe('requestTrailers');
    s.cancel();
    await expectAudit(1);
  });

  it('STREAMED: every chunk is held and a refused body releases nothing', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(bob.key), false, mode(BodySendMode.STREAMED)));
    const body = chatBody({ model: 'mock-large' });
    for (const part of [body.slice(0, 5), body.slice(5, 20)]) {
      const a = await s.exchange(requestBody(part, false));
      expect(a.requestBody?.response?.bodyMutation).toMatchObject({ clearBody: true });
    }
    const last = await s.exchange(requestBody(body.slice(20), true));
    expect(last.immediateResponse?.status.code).toBe(403);
    s.end();
    await expectAudit(1);
  });

  it('STREAMED: the last chunk carries the whole body, rewritten once (not original + rewritten)', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.STREAMED)));
    const body = chatBody({ stream: true, seed: '__' });
    const raw = body.replace('"__"', '12345678901234567890');
    await s.exchange(requestBody(raw.slice(0, 30), false));
    const last = await s.exchange(requestBody(raw.slice(30), true));
    const sent = Buffer.from(last.requestBody!.response!.bodyMutation!.body!).toString();
    expect(sent).toContain('"seed":12345678901234567890');
    expect(JSON.parse(sent).stream_options).toEqual({ include_usage: true });
    // Envoy removed content-length when it started STREAMED; the gate sets none.
    expect(last.requestBody!.response!.headerMutation).toBeUndefined();
    s.cancel();
    await expectAudit(1);
  });

  it('STREAMED: request trailers before the end of a held body → 400, never an empty body upstream', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.STREAMED)));
    await s.exchange(requestBody(chatBody(), false));
    const t = await s.exchange({ requestTrailers: { trailers: { headers: [] } } });
    expect(t.immediateResponse?.status.code).toBe(400);
    expect(errorCode(t)).toBe('unsupported_trailers');
    s.end();
    await expectAudit(1);
  });

  it('BUFFERED_PARTIAL: a partial body (over the buffer or before trailers) → 413; a whole one is judged', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.BUFFERED_PARTIAL)));
    const a = await s.exchange(requestBody(chatBody(), false));
    expect(a.immediateResponse?.status.code).toBe(413);
    s.end();
    const s2 = shared.gate.client.open();
    await s2.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.BUFFERED_PARTIAL)));
    const b = await s2.exchange(requestBody(chatBody({ model: 'mock-large' }), true));
    expect(b.response).toBe('requestBody');
    s2.cancel();
    const recs = await expectAudit(2);
    expect(recs.map((r) => r.status).sort()).toEqual([413, null]);
  });

  it('request_body_mode NONE: refused at request headers, and the problem is reported', async () => {
    const s = shared.gate.client.open();
    const a = await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.NONE)));
    expect(a.immediateResponse?.status.code).toBe(500);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec.failure).toMatch(/request_body_mode is NONE/);
    expect(shared.gate.server.filterConfig.problems.join('\n')).toMatch(/^request_body_none: /);
    expect(await shared.gate.metrics.registry.getSingleMetricAsString('lmgate_envoy_filter_config_problems')).toContain(
      'problem="request_body_none"} 1',
    );
  });
});

describe("Envoy's own replies keep their status", () => {
  for (const status of ['400', '200']) {
    it(`response headers as the first message (a reply before any request headers, ${status}) pass`, async () => {
      const s = shared.gate.client.open();
      const a = await s.exchange(responseHeaders({ ':status': status, 'content-type': 'text/plain' }));
      expect(a.response).toBe('responseHeaders');
      expect(a.responseHeaders?.response?.headerMutation).toBeUndefined();
      s.end();
      const rec = (await expectAudit(1))[0]!;
      expect(rec).toMatchObject({ status: Number(status), outcome: 'local_reply', error: null });
    });
  }

  it("Envoy's 413 before the buffered body reached the gate passes as 413", async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.BUFFERED)));
    const a = await s.exchange(responseHeaders({ ':status': '413', 'content-type': 'text/plain' }));
    expect(a.response).toBe('responseHeaders');
    expect(a.modeOverride?.responseBodyMode ?? BodySendMode.NONE).toBe(BodySendMode.NONE);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ status: 413, outcome: 'local_reply', principal: { key_id: 'alice' } });
  });

  it('a success answer to a body the gate never judged fails closed', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    const a = await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
    expect(a.immediateResponse?.status.code).toBe(500);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ status: 500, outcome: 'error' });
  });
});

describe('responses: bounded reading, trailers, content-length, what the client saw', () => {
  it('a JSON response without a known, bounded length is read STREAMED; usage comes from any split', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody()));
    const rh = await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
    expect(rh.modeOverride?.responseBodyMode).toBe(BodySendMode.STREAMED);
    const body = JSON.stringify({ model: 'mock-small-x', data: [{ embedding: [0.1, 0.2] }], usage });
    for (let i = 0; i < body.length; i += 7) {
      const piece = body.slice(i, i + 7);
      const a = await s.exchange(responseBody(piece, i + 7 >= body.length));
      expect(a.responseBody?.response?.bodyMutation).toBeUndefined();
    }
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ outcome: 'completed', status: 200, gen_ai: { response: { model: 'mock-small-x' } } });
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 2, output_tokens: 3 });
  });

  it('a JSON response one byte over server.maxBufferedResponseBytes is read STREAMED, at the limit BUFFERED', async () => {
    const max = shared.gate.config.server.maxBufferedResponseBytes;
    for (const [length, mode] of [
      [max + 1, BodySendMode.STREAMED],
      [max, BodySendMode.BUFFERED],
    ] as const) {
      const s = shared.gate.client.open();
      await s.exchange(requestHeaders(chatHeaders()));
      await s.exchange(requestBody(chatBody()));
      const rh = await s.exchange(
        responseHeaders({ ':status': '200', 'content-type': 'application/json', 'content-length': `${length}` }),
      );
      expect(rh.modeOverride?.responseBodyMode).toBe(mode);
      s.cancel();
    }
    await expectAudit(2);
  });

  it('a JSON response of known small length is BUFFERED, and complete even when trailers follow it', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody()));
    const body = JSON.stringify({ model: 'mock-small', usage });
    const rh = await s.exchange(
      responseHeaders({ ':status': '200', 'content-type': 'application/json', 'content-length': `${body.length}` }),
    );
    expect(rh.modeOverride).toMatchObject({
      responseBodyMode: BodySendMode.BUFFERED,
      responseTrailerMode: HeaderSendMode.SEND,
    });
    const rb = await s.exchange(responseBody(body, false));
    expect(rb.response).toBe('responseBody');
    const tr = await s.exchange({ responseTrailers: { trailers: { headers: [] } } });
    expect(tr.response).toBe('responseTrailers');
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ outcome: 'completed', status: 200 });
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 2 });
  });

  it('STREAMED SSE ended by trailers is completed with its usage; content-length goes when usage is withheld', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody({ stream: true })));
    const events =
      sse({ model: 'mock-small', choices: [{ index: 0, delta: { content: 'hi' } }] }) +
      sse({ model: 'mock-small', choices: [], usage }) +
      'data: [DONE]\n\n';
    const rh = await s.exchange(
      responseHeaders({
        ':status': '200',
        'content-type': 'text/event-stream',
        'content-length': `${Buffer.byteLength(events)}`,
      }),
    );
    expect(rh.modeOverride?.responseBodyMode).toBe(BodySendMode.STREAMED);
    expect(rh.modeOverride?.responseTrailerMode).toBe(HeaderSendMode.SEND);
    expect(removed(rh, 'responseHeaders')).toContain('content-length');
    const rb = await s.exchange(responseBody(events, false));
    const forwarded = Buffer.from(rb.responseBody!.response!.bodyMutation!.body!).toString();
    expect(forwarded).not.toContain('"usage"');
    expect(forwarded).toContain('[DONE]');
    const tr = await s.exchange({ responseTrailers: { trailers: { headers: [] } } });
    expect(tr.response).toBe('responseTrailers');
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ outcome: 'completed', status: 200 });
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 2, output_tokens: 3 });
  });

  it('a body the gate does not rewrite keeps its content-length', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody({ stream: true, stream_options: { include_usage: true } })));
    const rh = await s.exchange(
      responseHeaders({ ':status': '200', 'content-type': 'text/event-stream', 'content-length': '100' }),
    );
    expect(removed(rh, 'responseHeaders')).not.toContain('content-length');
    s.cancel();
    await expectAudit(1);
  });
});

describe('a refusal after the response started cuts it: the audit keeps the status the client saw', () => {
  let failing: InProcessGate;
  beforeAll(async () => {
    const boom = defineStage({
      name: 'test.boom',
      summary: 'fails on every response chunk',
      needs: [],
      provides: [],
      always: true,
      create: () => ({
        onResponseHeaders: (ctx) => ctx.needResponseBody('STREAMED'),
        onResponseBody: (): Buffer => {
          throw new Error('boom');
        },
      }),
    });
    failing = await startInProcessGate([alice], { extraStages: [boom] });
  });
  afterAll(() => failing.stop());

  it('a response stage failing on a STREAMED chunk: audit status 200, outcome error', async () => {
    const s = failing.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody({ stream: true })));
    await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    const a = await s.exchange(responseBody('data: {}\n\n', false));
    expect(a.response).toBe('immediateResponse');
    s.end();
    const [rec] = await failing.waitAudit(1);
    expect(rec).toMatchObject({ status: 200, outcome: 'error' });
    expect(rec!.failure).toMatch(/response cut after its headers were sent/);
  });

  it('the whole body in its first message (Envoy still holds the headers): audit status 500, not a cut', async () => {
    // Envoy sends a body that wholly arrived before the headers' answer as one message and keeps
    // the headers until it is answered (processor_state.cc: complete_body_available_): the
    // ImmediateResponse reaches the client as a clean 500.
    const s = failing.client.open();
    await s.exchange(requestHeaders(chatHeaders(alice.key, { 'x-request-id': 'whole-first-body' })));
    await s.exchange(requestBody(chatBody({ stream: true })));
    await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    const a = await s.exchange(responseBody('data: {}\n\n', true));
    expect(a.response).toBe('immediateResponse');
    s.end();
    const rec = await waitFor('its audit record', async () =>
      (await failing.auditRecords()).find((r) => r.request_id === 'whole-first-body'),
    );
    expect(rec).toMatchObject({ status: 500, outcome: 'error' });
    expect(rec.failure).not.toMatch(/response cut/);
  });
});

describe('slow paths ask Envoy to wait', () => {
  it('a body parsed off the event loop is preceded by override_message_timeout', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.BUFFERED)));
    const filler = 'x'.repeat(1024 * 1024);
    s.send(requestBody(chatBody({ filler })));
    const first = await s.next(3000);
    expect(first?.overrideMessageTimeout).toBeDefined();
    const ms = Number(first!.overrideMessageTimeout!.seconds) * 1000 + first!.overrideMessageTimeout!.nanos / 1e6;
    expect(ms).toBeGreaterThan(shared.gate.config.server.messageDeadlineMs);
    expect(ms).toBeLessThanOrEqual(2000);
    const second = await s.next(3000);
    expect(second?.response).toBe('requestBody');
    s.cancel();
    await expectAudit(1);
  });
});

describe('a route chosen at the body needs the headers still held (BUFFERED)', () => {
  let routed: InProcessGate;
  beforeAll(async () => {
    routed = await startInProcessGate([alice], {
      extra: { routing: { routes: [{ name: 'large', models: ['mock-*'] }] } },
    });
  });
  afterAll(async () => {
    await routed?.stop();
  });

  it('BUFFERED: the route header and the route-cache clear ride on the body answer', async () => {
    const s = routed.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.BUFFERED)));
    const a = await s.exchange(requestBody(chatBody(), true));
    expect(a.requestBody?.response?.clearRouteCache).toBe(true);
    const set = a.requestBody?.response?.headerMutation?.setHeaders?.map((h) => h.header?.key);
    expect(set).toContain('x-lmgate-route');
    s.end();
    await routed.waitAudit(1);
  });

  it('STREAMED: Envoy already sent the headers on, so the request fails closed rather than going to the wrong cluster', async () => {
    const s = routed.client.open();
    await s.exchange(requestHeaders(chatHeaders(), false, mode(BodySendMode.STREAMED)));
    const a = await s.exchange(requestBody(chatBody(), true));
    expect(a.immediateResponse?.status.code).toBe(500);
    s.end();
    const rec = (await routed.waitAudit(2))[1]!;
    expect(rec.failure).toContain('request_body_mode BUFFERED');
  });
});
