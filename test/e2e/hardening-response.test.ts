// Regression tests for the response-side findings of the ext_proc conformance review
// (/work/shared/EXTPROC-CONFORMANCE.md #2, #3, #7, #8), written before the fixes: real Envoy,
// the gate as a process, the mock model server. Each test asserts what the client got, what
// reached the model server and the gate's audit record.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extProcFilter } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { describeUpstream, onlyRecord, settledUpstreamFor, sseData } from '../harness/observe.ts';
import { rawRequest, requestHead } from '../harness/raw-http.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const rid = (name: string) => `${name}-${randomUUID()}`;
const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi there' }], ...extra });

/** A JSON POST with a content-length and the given x-mock-* headers, over a raw socket: a body
 * shorter than its content-length shows as `complete: false` instead of a hung client. */
function post(stack: Stack, id: string, body: string, headers: Record<string, string> = {}, timeoutMs = 5000) {
  return rawRequest(
    [
      requestHead('POST', '/v1/chat/completions', {
        host: 'lm-gate.test',
        authorization: `Bearer ${alice.key}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-request-id': id,
        ...headers,
      }),
      body,
    ],
    { port: stack.envoy.ports.listener, timeoutMs },
  );
}

describe('shipped envoy.yaml', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ keys: [alice] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  // In FULL_DUPLEX_STREAMED (the e2e-duplex project, opt-in), with the suite's other files on the
  // same two cores, one of the ~1300 body answers misses Envoy's 200 ms message_timeout now and
  // then (ext_proc.message_timeouts 1, the client sees its 200 cut): 3 runs in 5 under eight busy
  // loops, before and after a 1 MiB stream window, so Envoy's and the gate's CPU share, not the
  // gate's work (150 ms in all). One retry there; the shipped mode gets none.
  const retry = process.env.LMG_E2E_FULL_DUPLEX ? 1 : 0;
  it('#2 a 20 MiB JSON embeddings answer reaches the client whole and is metered', {
    timeout: 40_000,
    retry,
  }, async () => {
    const id = rid('embeddings-20mib');
    const inputs = ['one', 'two', 'three', 'four'];
    const dims = 320_000; // ~21 MB of JSON: above Envoy's 8 MiB buffer
    // Today Envoy stalls the BUFFERED response until stream_idle_timeout (300 s): give up at 20 s.
    const res = await fetch(`${stack.baseURL}/embeddings`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${alice.key}`,
        'content-type': 'application/json',
        'x-request-id': id,
        'x-mock-embedding-dims': String(dims),
      },
      body: JSON.stringify({ model: 'mock-small', input: inputs }),
      signal: AbortSignal.timeout(20_000),
    })
      .then(async (r) => ({ status: r.status, text: await r.text() }))
      .catch((err: unknown) => {
        throw new Error(`no complete answer within 20 s: ${String(err)}`);
      });
    expect({ status: res.status, start: res.text.slice(0, 200) }).toMatchObject({ status: 200 });
    expect(res.text.length).toBeGreaterThan(20 * 1024 * 1024);
    const got = JSON.parse(res.text) as { data: { embedding: number[] }[]; usage: unknown };
    expect(got.data.map((d) => d.embedding.length)).toEqual(inputs.map(() => dims));
    expect(got.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
    expect(await onlyRecord(stack, id)).toMatchObject({
      status: 200,
      outcome: 'completed',
      gen_ai: { usage: { input_tokens: 4, output_tokens: 0 } },
    });
  });

  describe('#3 the gate withholds the usage event from a stream the upstream sent with a content-length', () => {
    const cases: [string, Record<string, string>][] = [
      ['the whole body in one write', {}],
      ['the body in delayed writes', { 'x-mock-chunk-delay-ms': '20' }],
    ];
    for (const [name, extra] of cases) {
      it(`${name}: a complete SSE stream without the usage event, no length mismatch; audit completed with usage`, async () => {
        const id = rid('stale-content-length');
        const res = await post(stack, id, chat({ stream: true }), { 'x-mock-content-length': '1', ...extra });
        expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status: 200 });
        expect(res.complete).toBe(true);
        if (res.headers['content-length'] !== undefined)
          expect(Number(res.headers['content-length'])).toBe(res.body.length);
        const data = sseData(res.body.toString());
        expect(data.at(-1)).toBe('[DONE]');
        const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
        expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Hello from the mock model');
        expect(chunks.filter((c) => c.usage || c.choices.length === 0)).toEqual([]);
        // the model server was asked for usage on the client's behalf
        const up = await settledUpstreamFor(stack, id);
        expect(up.map(describeUpstream)).toHaveLength(1);
        expect(up[0]!.json).toMatchObject({ stream_options: { include_usage: true } });
        expect(await onlyRecord(stack, id)).toMatchObject({
          status: 200,
          outcome: 'completed',
          gen_ai: { usage: { input_tokens: 2, output_tokens: 5 } },
          metering: { total_tokens: 7 },
        });
      });
    }
  });
});

describe('#7 upstream response trailers (model_server cluster with enable_trailers)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      editEnvoy: (cfg) => {
        const cluster = cfg.static_resources.clusters.find((c: { name: string }) => c.name === 'model_server');
        cluster.typed_extension_protocol_options = {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http_protocol_options: { enable_trailers: true } },
          },
        };
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('non-streamed chat answered with trailers → 200; audit completed with usage', async () => {
    const id = rid('trailers-json');
    const res = await post(stack, id, chat(), { 'x-mock-trailers': '1' });
    expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 200 });
    expect(JSON.parse(res.body.toString()).choices[0].message.content).toBe('Hello from the mock model');
    expect(await onlyRecord(stack, id)).toMatchObject({
      status: 200,
      outcome: 'completed',
      gen_ai: { usage: { input_tokens: 2, output_tokens: 5 } },
      metering: { total_tokens: 7 },
    });
  });

  it('streamed chat answered with trailers → 200, a complete stream; audit completed with usage', async () => {
    const id = rid('trailers-sse');
    const res = await post(stack, id, chat({ stream: true }), { 'x-mock-trailers': '1' });
    expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status: 200 });
    expect(sseData(res.body.toString()).at(-1)).toBe('[DONE]');
    expect(await onlyRecord(stack, id)).toMatchObject({
      status: 200,
      outcome: 'completed',
      stream: true,
      gen_ai: { usage: { input_tokens: 2, output_tokens: 5 } },
      metering: { total_tokens: 7 },
    });
  });
});

describe('#8 observability_mode: true with the shipped BUFFERED request mode', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      editEnvoy: (cfg) => {
        extProcFilter(cfg).observability_mode = true;
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('the client gets 200; the audit says 200 (what the client saw) and that the body was not observed', async () => {
    const id = rid('observability');
    const res = await post(stack, id, chat());
    expect({ status: res.status, body: res.body.toString() }).toMatchObject({ status: 200 });
    const rec = await onlyRecord(stack, id);
    expect(rec.status).toBe(200);
    expect(rec.failure).toMatch(/observ/i);
  });
});
