// Regression tests for Envoy's own replies on the request path (/work/shared/EXTPROC-CONFORMANCE.md
// #4 and #10, and header-name spoofing), written before the fixes: a local reply Envoy makes
// (413 buffer limit, 408 idle timeout, 400 codec error, missing Host, a `#` in the path, a
// refused upgrade) keeps its status through ext_proc, and the gate's audit agrees with what the
// client saw. Raw sockets put the malformed bytes on the wire; requests carry their own
// x-request-id, but a local reply may reach the gate without the request headers, so its audit
// records are found as those of the ext_proc streams the request opened.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../harness/gate.ts';
import { auditRecordsFor, describeUpstream, settledUpstreamFor, withGateRecords } from '../harness/observe.ts';
import {
  chunk,
  chunkedBody,
  lastChunk,
  plainBody,
  type RawPart,
  rawRequest,
  requestHead,
} from '../harness/raw-http.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const rid = (name: string) => `${name}-${randomUUID()}`;
const MiB = 1024 * 1024;
const small = JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi there' }] });

const baseHeaders = (id: string): Record<string, string> => ({
  host: 'lm-gate.test',
  authorization: `Bearer ${alice.key}`,
  'content-type': 'application/json',
  'x-request-id': id,
});

const send = (stack: Stack, parts: RawPart[], timeoutMs = 15_000) =>
  rawRequest(parts, { port: stack.envoy.ports.listener, timeoutMs });

/** The answer's status, or 'closed' when the connection closed before any answer byte. */
async function answerOrClosed(stack: Stack, parts: RawPart[]): Promise<{ status: number | 'closed'; body: string }> {
  try {
    const res = await send(stack, parts, 5000);
    return { status: res.status, body: res.body.toString().slice(0, 200) };
  } catch (err) {
    if (String(err).includes('connection closed without a complete answer (got nothing'))
      return { status: 'closed', body: '' };
    throw err;
  }
}

describe('shipped envoy.yaml', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ keys: [alice] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("#4 a 30 MB chunked upload (no content-length) → 413 (Envoy's, or the gate's in FULL_DUPLEX_STREAMED mode); one audit record", async () => {
    const id = rid('chunked-30mb');
    const { result: res, records } = await withGateRecords(stack, () =>
      send(stack, [
        requestHead('POST', '/v1/chat/completions', { ...baseHeaders(id), 'transfer-encoding': 'chunked' }),
        { source: chunkedBody(30 * MiB) },
        lastChunk(),
      ]),
    );
    expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status: 413 });
    // FULL_DUPLEX_STREAMED: Envoy buffers nothing, so the gate counts the body and refuses it
    // itself at server.maxRequestBodyBytes (its OpenAI 413) before Envoy's limit is reached.
    const outcome = process.env.LMG_E2E_FULL_DUPLEX ? 'rejected' : 'local_reply';
    expect(records.map((r) => [r.status, r.outcome])).toEqual([[413, outcome]]);
    expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
  });

  const withLength = [
    ['30 MB', 30 * MiB],
    ['5 MiB (over the gate limit of 4 MiB)', 5 * MiB],
  ] as const;
  for (const [name, size] of withLength) {
    it(`a ${name} upload with a content-length → the gate's OpenAI 413 request_too_large; audit 413 rejected; nothing upstream`, async () => {
      const id = rid('content-length-upload');
      const res = await send(stack, [
        requestHead('POST', '/v1/chat/completions', { ...baseHeaders(id), 'content-length': size }),
        { source: plainBody(size) },
      ]);
      expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status: 413 });
      expect(res.headers['content-type']).toContain('application/json');
      expect(JSON.parse(res.body.toString()).error).toMatchObject({
        code: 'request_too_large',
        type: 'invalid_request_error',
      });
      const recs = await auditRecordsFor(stack, id);
      expect(recs.map((r) => [r.status, r.outcome])).toEqual([[413, 'rejected']]);
      expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
    });
  }

  /** Envoy's own refusals of a request it cannot route: its status reaches the client, never
   * 500, and any record the gate wrote carries that status. These local replies reach the gate as
   * response_headers with no request_headers before them (Envoy 1.40, checked with a
   * pass-through processor), so the records are found by stream count, not by id. */
  const refusals: [string, number, (id: string) => RawPart[]][] = [
    [
      'an HTTP/1.1 request without Host',
      400,
      (id) => {
        const { host: _host, ...headers } = baseHeaders(id);
        return [requestHead('POST', '/v1/chat/completions', { ...headers, 'content-length': small.length }), small];
      },
    ],
    [
      'a # in the path',
      400,
      (id) => [
        requestHead('POST', '/v1/chat/completions#frag', { ...baseHeaders(id), 'content-length': small.length }),
        small,
      ],
    ],
    [
      'a websocket upgrade',
      403,
      (id) => [
        requestHead('GET', '/v1/realtime', {
          ...baseHeaders(id),
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        }),
      ],
    ],
  ];
  for (const [name, status, parts] of refusals) {
    it(`#4 ${name} → Envoy's ${status} reaches the client; the gate's records agree`, async () => {
      const id = rid('refusal');
      const { result: res, records } = await withGateRecords(stack, () => send(stack, parts(id), 5000));
      expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status });
      expect(records.map((r) => r.status)).toEqual(records.map(() => status));
      expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
    });
  }

  // HTTP/1 codec errors: Envoy closes the connection right after making its 400. With ext_proc
  // on the encode path the 400 waits for the processor and is never written: the client sees
  // the connection close, even with a processor that passes everything through (checked on
  // 1.40). So the client may get Envoy's 400 or no answer, never a 500 or a 2xx; the gate's
  // record must say 400.
  it('#4 a malformed chunk size → 400 or a closed connection, never 500; audit one record, 400, local_reply', async () => {
    const id = rid('bad-chunk');
    const { result, records } = await withGateRecords(stack, () =>
      answerOrClosed(stack, [
        requestHead('POST', '/v1/chat/completions', { ...baseHeaders(id), 'transfer-encoding': 'chunked' }),
        chunk(small.slice(0, 10)),
        { delayMs: 30 },
        'zz\r\nabc\r\n',
        lastChunk(),
      ]),
    );
    expect([400, 'closed']).toContain(result.status);
    expect(records.map((r) => [r.status, r.outcome])).toEqual([[400, 'local_reply']]);
    expect((await auditRecordsFor(stack, id)).map((r) => r.status)).toEqual([400]);
    // the 10 bytes before the bad chunk never reached the model server
    expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
  });

  it('#7 an underscore header (x_lmgate_tenant) → Envoy refuses it (400 or a closed connection); nothing with it reaches the model server', async () => {
    const id = rid('underscore');
    const { result, records } = await withGateRecords(stack, () =>
      answerOrClosed(stack, [
        requestHead('POST', '/v1/chat/completions', {
          ...baseHeaders(id),
          'content-length': small.length,
          x_lmgate_tenant: 'evil',
        }),
        small,
      ]),
    );
    expect([400, 'closed']).toContain(result.status);
    expect(records.map((r) => r.status)).toEqual(records.map(() => 400));
    expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
    const spoofed = stack.mock.received.filter((r) => Object.keys(r.headers).some((h) => h.startsWith('x_lmgate')));
    expect(spoofed.map(describeUpstream)).toEqual([]);
  });
});

describe('#4 a stalled upload with stream_idle_timeout: 1s', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      editEnvoy: (cfg) => {
        cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stream_idle_timeout = '1s';
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("headers and part of the body, then silence → Envoy's 408; audit one record, 408, local_reply", async () => {
    const id = rid('stalled');
    const { result: res, records } = await withGateRecords(stack, () =>
      send(
        stack,
        [
          requestHead('POST', '/v1/chat/completions', { ...baseHeaders(id), 'content-length': small.length }),
          small.slice(0, 20),
        ],
        5000,
      ),
    );
    expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status: 408 });
    expect(records.map((r) => [r.status, r.outcome])).toEqual([[408, 'local_reply']]);
    // the 20 bytes were never released to the model server
    expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
  });
});

describe('#10 the gate is down (SIGKILL)', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('the client gets 503 (status_on_error), not 500; nothing reaches the model server', async () => {
    stack = await startStack({ keys: [alice] });
    await stack.gate.stop('SIGKILL');
    const id = rid('gate-down');
    const res = await send(
      stack,
      [requestHead('POST', '/v1/chat/completions', { ...baseHeaders(id), 'content-length': small.length }), small],
      5000,
    );
    expect({ status: res.status, body: res.body.toString().slice(0, 200) }).toMatchObject({ status: 503 });
    expect((await settledUpstreamFor(stack, id)).map(describeUpstream)).toEqual([]);
  });
});
