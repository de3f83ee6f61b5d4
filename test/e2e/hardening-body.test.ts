// Regression tests for the request-body findings of the ext_proc conformance review
// (/work/shared/EXTPROC-CONFORMANCE.md #1 and #5, plus parser differentials, nesting depth and
// a BOM), written before the fixes: real Envoy, the gate as a process, the mock model server.
// Each test asserts what the client got, what bytes reached the model server and the gate's
// audit record. Requests carry their own x-request-id (Envoy keeps a client-supplied one).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extProcFilter } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import {
  auditRecordsFor,
  describeUpstream,
  onlyRecord,
  settledUpstreamFor,
  sseData,
  withGateRecords,
} from '../harness/observe.ts';
import { chunk, h2Request, lastChunk, rawRequest, requestHead } from '../harness/raw-http.ts';
import { type Stack, startStack } from '../harness/stack.ts';

// bob may use mock-small only: every test below that slips mock-large past the gate shows.
const bob = makeKey('bob', { tenant: 'acme', models: ['mock-small'] });

const rid = (name: string) => `${name}-${randomUUID()}`;
const messages = [{ role: 'user', content: 'hi there' }];
const chat = (model: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model, messages, ...extra });
const INJECTED = '"stream_options":{"include_usage":true}';

/** The body the model server got, with the gate's include_usage member taken out again (it may
 * splice it in front of or after the other members). */
function withoutInjected(got: string): string {
  for (const cut of [`${INJECTED},`, `,${INJECTED}`]) if (got.includes(cut)) return got.replace(cut, '');
  return got;
}

const errorOf = (body: Buffer) => (JSON.parse(body.toString()) as { error: Record<string, unknown> }).error;

/** The body in `n` pieces, sent as HTTP/1.1 chunks `delayMs` apart, so Envoy reads (and in
 * STREAMED mode sends the gate) several body messages. */
function sendChunked(stack: Stack, id: string, body: string, opts: { n?: number; delayMs?: number } = {}) {
  const n = opts.n ?? 4;
  const parts: (Buffer | string | { delayMs: number })[] = [
    requestHead('POST', '/v1/chat/completions', {
      host: 'lm-gate.test',
      authorization: `Bearer ${bob.key}`,
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      'x-request-id': id,
    }),
  ];
  for (let i = 0; i < n; i++) {
    parts.push(chunk(body.slice(Math.floor((i * body.length) / n), Math.floor(((i + 1) * body.length) / n))));
    parts.push({ delayMs: opts.delayMs ?? 30 });
  }
  parts.push(lastChunk());
  return rawRequest(parts, { port: stack.envoy.ports.listener, timeoutMs: 10_000 });
}

/** A JSON POST with a content-length, in one write. */
function postJson(stack: Stack, id: string, body: string | Buffer, path = '/v1/chat/completions') {
  return rawRequest(
    [
      requestHead('POST', path, {
        host: 'lm-gate.test',
        authorization: `Bearer ${bob.key}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-request-id': id,
      }),
      body,
    ],
    { port: stack.envoy.ports.listener },
  );
}

/** Nothing of the request's body reached the model server (a record of a cut upload with an
 * empty body is allowed: in STREAMED mode Envoy may send the headers before the decision). */
async function expectNoBodyUpstream(stack: Stack, id: string) {
  expect((await settledUpstreamFor(stack, id)).filter((r) => r.body.length > 0).map(describeUpstream)).toEqual([]);
}

/** The model server got the body exactly once, whole. */
async function onlyUpstream(stack: Stack, id: string) {
  const got = await settledUpstreamFor(stack, id);
  expect(got.map(describeUpstream)).toHaveLength(1);
  expect(got[0]!.complete).toBe(true);
  return got[0]!;
}

describe('shipped envoy.yaml', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ keys: [bob] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const h2 = (id: string, body: string, trailers = true) =>
    h2Request(stack.envoy.url, {
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${bob.key}`, 'content-type': 'application/json', 'x-request-id': id },
      body: [body.slice(0, 20), { delayMs: 20 }, body.slice(20)],
      ...(trailers ? { trailers: { 'x-client-checksum': 'abc123' } } : {}),
    });

  describe('#1 request trailers (h2c): the body is still checked before anything goes upstream', () => {
    it('a forbidden model with trailers → 403 model_not_allowed; no byte upstream; audit rejected', async () => {
      const id = rid('trailers-forbidden');
      const res = await h2(id, chat('mock-large'));
      expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 403 });
      expect(res.headers['content-type']).toContain('application/json');
      expect(errorOf(res.body)).toMatchObject({ code: 'model_not_allowed', type: 'permission_error' });
      await expectNoBodyUpstream(stack, id);
      expect(stack.mock.received.filter((r) => r.body.includes('mock-large')).map(describeUpstream)).toEqual([]);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 403,
        outcome: 'rejected',
        gen_ai: { request: { model: 'mock-large' } },
      });
    });

    it('an allowed model with trailers → 200 with the answer; the body upstream once, unchanged; audit completed with usage', async () => {
      const id = rid('trailers-allowed');
      const body = chat('mock-small');
      const res = await h2(id, body);
      expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 200 });
      expect(JSON.parse(res.body.toString()).choices[0].message.content).toBe('Hello from the mock model');
      expect((await onlyUpstream(stack, id)).body.toString()).toBe(body);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 200,
        outcome: 'completed',
        gen_ai: {
          request: { model: 'mock-small' },
          response: { model: 'mock-small' },
          usage: { input_tokens: 2, output_tokens: 5 },
        },
        metering: { total_tokens: 7 },
      });
    });

    it('a streamed request with trailers → the gate still injects include_usage upstream and meters the stream', async () => {
      const id = rid('trailers-stream');
      const body = chat('mock-small', { stream: true });
      const res = await h2(id, body);
      expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 200 });
      const data = sseData(res.body.toString());
      expect(data.at(-1)).toBe('[DONE]');
      // the client did not ask for usage: no usage event reaches it
      expect(data.slice(0, -1).filter((d) => JSON.parse(d).usage)).toEqual([]);
      const up = await onlyUpstream(stack, id);
      expect(up.json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
      expect(withoutInjected(up.body.toString())).toBe(body);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 200,
        outcome: 'completed',
        stream: true,
        gen_ai: { usage: { input_tokens: 2, output_tokens: 5 } },
      });
    });
  });

  describe('parser differentials: a body two JSON parsers could read differently is refused', () => {
    const cases: [string, string, string][] = [
      [
        'keys differing only in case ("model" and "MODEL")',
        `{"model":"mock-small","MODEL":"mock-large","messages":[{"role":"user","content":"hi"}]}`,
        'ambiguous_key',
      ],
      [
        'the same key twice ("model")',
        `{"model":"mock-large","model":"mock-small","messages":[{"role":"user","content":"hi"}]}`,
        'duplicate_key',
      ],
      [
        'the same key twice inside a message object',
        `{"model":"mock-small","messages":[{"role":"user","content":"a","content":"b"}]}`,
        'duplicate_key',
      ],
    ];
    for (const [name, body, code] of cases) {
      it(`${name} → 400 ${code}; nothing upstream`, async () => {
        const id = rid(code);
        const res = await postJson(stack, id, body);
        expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 400 });
        expect(errorOf(res.body)).toMatchObject({ code, type: 'invalid_request_error' });
        expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
        expect(await onlyRecord(stack, id)).toMatchObject({ status: 400, outcome: 'rejected' });
      });
    }
  });

  describe('nesting depth and a byte-order mark', () => {
    const nested = (depth: number) =>
      `{"model":"mock-small","stream":true,"messages":[{"role":"user","content":${'['.repeat(depth)}${']'.repeat(depth)}}]}`;

    it('a ~39 KB streamed request nesting arrays 20,000 deep → 400 json_too_deep; nothing upstream', async () => {
      const id = rid('deep');
      const body = nested(20_000);
      expect(body.length).toBeGreaterThan(39_000);
      const res = await postJson(stack, id, body);
      expect({ status: res.status, body: res.body.toString().slice(0, 300) }).toMatchObject({ status: 400 });
      expect(errorOf(res.body)).toMatchObject({ code: 'json_too_deep', type: 'invalid_request_error' });
      expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
      expect(await onlyRecord(stack, id)).toMatchObject({ status: 400, outcome: 'rejected' });
    });

    it('nesting 60 deep is accepted (200, a complete stream)', async () => {
      const id = rid('nested-60');
      const res = await postJson(stack, id, nested(60));
      expect({ status: res.status, body: res.body.toString().slice(0, 300) }).toMatchObject({ status: 200 });
      expect(sseData(res.body.toString()).at(-1)).toBe('[DONE]');
      expect((await onlyUpstream(stack, id)).json).toMatchObject({ stream_options: { include_usage: true } });
      expect(await onlyRecord(stack, id)).toMatchObject({ status: 200, outcome: 'completed' });
    });

    it('a UTF-8 BOM before the JSON → 200; the model server gets the body without the BOM', async () => {
      const id = rid('bom');
      const json = chat('mock-small');
      const res = await postJson(stack, id, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]));
      expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 200 });
      expect((await onlyUpstream(stack, id)).body.toString('latin1')).toBe(json);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 200,
        outcome: 'completed',
        gen_ai: { request: { model: 'mock-small' } },
      });
    });
  });
});

// #5: request_body_mode STREAMED or BUFFERED_PARTIAL. The body is sent in delayed chunks, so
// in STREAMED mode Envoy sends the gate several body messages. BUFFERED_PARTIAL runs with a
// 16 KiB buffer so that a larger body makes Envoy send a partial body and let the rest flow.
for (const mode of ['STREAMED', 'BUFFERED_PARTIAL'] as const) {
  describe(`#5 request_body_mode: ${mode}`, () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({
        keys: [bob],
        editEnvoy: (cfg) => {
          extProcFilter(cfg).processing_mode.request_body_mode = mode;
          if (mode === 'BUFFERED_PARTIAL') cfg.static_resources.listeners[0].per_connection_buffer_limit_bytes = 16_384;
        },
      });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('a forbidden model → 403; no byte of the body reached the model server', async () => {
      const id = rid(`${mode}-forbidden`);
      const res = await sendChunked(stack, id, chat('mock-large'));
      expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 403 });
      expect(errorOf(res.body)).toMatchObject({ code: 'model_not_allowed' });
      await expectNoBodyUpstream(stack, id);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 403,
        outcome: 'rejected',
        gen_ai: { request: { model: 'mock-large' } },
      });
    });

    it('an allowed model → 200; the model server got the body once, byte-identical', async () => {
      const id = rid(`${mode}-allowed`);
      const body = chat('mock-small');
      const res = await sendChunked(stack, id, body);
      expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 200 });
      expect((await onlyUpstream(stack, id)).body.toString()).toBe(body);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 200,
        outcome: 'completed',
        gen_ai: { usage: { input_tokens: 2, output_tokens: 5 } },
      });
    });

    it('an allowed stream → 200; the model server got the body once with include_usage spliced in, not {original}{rewritten}', async () => {
      const id = rid(`${mode}-stream`);
      const body = chat('mock-small', { stream: true });
      const res = await sendChunked(stack, id, body);
      expect({ status: res.status, body: res.body.toString().slice(0, 300) }).toMatchObject({ status: 200 });
      expect(sseData(res.body.toString()).at(-1)).toBe('[DONE]');
      const up = await onlyUpstream(stack, id);
      expect(up.body.toString()).not.toContain('}{');
      expect(up.json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
      expect(withoutInjected(up.body.toString())).toBe(body);
      expect(await onlyRecord(stack, id)).toMatchObject({
        status: 200,
        outcome: 'completed',
        gen_ai: { usage: { input_tokens: 2, output_tokens: 5 } },
      });
    });

    if (mode === 'BUFFERED_PARTIAL') {
      it('a 40 KB body over the 16 KiB buffer (forbidden model first) is refused; no byte reached the model server', async () => {
        const id = rid('partial-over-limit');
        const body = chat('mock-large', { messages: [{ role: 'user', content: 'x'.repeat(40_000) }] });
        const { result: res, records } = await withGateRecords(stack, () => sendChunked(stack, id, body, { n: 8 }));
        expect(res.status).toBeGreaterThanOrEqual(400);
        await expectNoBodyUpstream(stack, id);
        // the gate's records say what the client saw
        expect(records.map((r) => r.status)).toEqual(records.map(() => res.status));
        expect((await auditRecordsFor(stack, id)).map((r) => r.status)).toEqual([res.status]);
      });
    }
  });
}
