// A JSON answer DLP must hold whole (dlp.inspect: both rewrites it), through the real Envoy, in
// the FULL_DUPLEX_STREAMED request mode (response bodies then come STREAMED whatever the gate
// asks) and in the shipped BUFFERED mode: an answer over server.maxBufferedResponseBytes, and one
// that upstream ends with HTTP trailers. In neither may a raw byte of the answer reach the
// client, and the one audit record carries the status the client saw.
//
// Over the limit with a content-length, the body can never be checked, and that is known at the
// response headers: a clean 403 there. Ended by trailers, the body DLP holds for its end cannot
// go out (a trailers answer carries no body): refused. Envoy had the whole answer before the
// headers' answer, so it still holds the headers (processor_state.cc: complete_body_available_)
// and the client gets a clean 500, which the record says too.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extProcFilter, FULL_DUPLEX_PROCESSING_MODE } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { onlyRecord } from '../harness/observe.ts';
import { type RawResponse, rawRequest, requestHead } from '../harness/raw-http.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const rid = (name: string) => `${name}-${randomUUID()}`;
const EMAIL = 'jane.doe@example.com';
const LIMIT = 4096;
// The answer the mock gives: the e-mail at its start, padded past LIMIT (the mock takes its text
// from a request header, so the limit is set small rather than the answer made large).
const BIG = `Write to ${EMAIL} today. ${'The plan stays as agreed. '.repeat(Math.ceil((2 * LIMIT) / 26))}`;
const chat = JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi there' }] });

function post(stack: Stack, id: string, headers: Record<string, string>): Promise<RawResponse> {
  return rawRequest(
    [
      requestHead('POST', '/v1/chat/completions', {
        host: 'lm-gate.test',
        authorization: `Bearer ${alice.key}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(chat),
        'x-request-id': id,
        ...headers,
      }),
      chat,
    ],
    { port: stack.envoy.ports.listener, timeoutMs: 8000 },
  );
}

/** No byte of the raw answer: neither the e-mail nor its local part. */
function expectNoRawValue(res: RawResponse): void {
  const seen = res.raw.toString('latin1');
  expect(seen).not.toContain(EMAIL);
  expect(seen).not.toContain('jane.doe');
}

const modes = [
  ['FULL_DUPLEX_STREAMED request mode', true],
  ['shipped BUFFERED request mode', false],
] as const;

describe.each(modes)('%s, dlp.inspect both, a JSON answer held whole', (_name, duplex) => {
  let stack: Stack;
  let requestBodyMode: string | undefined;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      gateExtra: {
        server: { maxBufferedResponseBytes: LIMIT },
        dlp: { inspect: 'both', policies: [{ name: 'default', detectors: { EMAIL: 'redact' } }] },
      },
      editEnvoy: (cfg) => {
        // The mode is this file's to choose, whatever LMG_E2E_FULL_DUPLEX says.
        const filter = extProcFilter(cfg);
        if (duplex) filter.processing_mode = { ...FULL_DUPLEX_PROCESSING_MODE };
        requestBodyMode = filter.processing_mode?.request_body_mode;
        // Upstream trailers reach Envoy only with enable_trailers on the model server's cluster.
        const cluster = cfg.static_resources.clusters.find((c: { name: string }) => c.name === 'model_server');
        cluster.typed_extension_protocol_options = {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http_protocol_options: { enable_trailers: true } },
          },
        };
      },
    });
  }, 30_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('the filter runs in the mode this case names', () => {
    // Guards the cases below against proving the other mode.
    expect(requestBodyMode).toBe(duplex ? 'FULL_DUPLEX_STREAMED' : 'BUFFERED');
  });

  it('a small answer is redacted and delivered whole (the path works at all)', async () => {
    const id = rid('held-small');
    const res = await post(stack, id, { 'x-mock-content': encodeURIComponent(`Write to ${EMAIL} today.`) });
    expect({ status: res.status, complete: res.complete }).toEqual({ status: 200, complete: true });
    expectNoRawValue(res);
    const content = JSON.parse(res.body.toString()).choices[0].message.content as string;
    expect(content).toMatch(/^Write to \S+ today\.$/);
    expect(await onlyRecord(stack, id)).toMatchObject({ status: 200, outcome: 'completed' });
  });

  it('an answer whose content-length is over server.maxBufferedResponseBytes: a clean 403 before any byte; audit 403', async () => {
    const id = rid('held-over-limit');
    const res = await post(stack, id, { 'x-mock-content': encodeURIComponent(BIG) });
    expectNoRawValue(res);
    // The length says at the response headers that the body could never be checked: refused
    // there, while Envoy still holds the headers, so the client gets the error and not a 200.
    expect({ status: res.status, complete: res.complete }).toEqual({ status: 403, complete: true });
    expect(JSON.parse(res.body.toString())).toMatchObject({
      error: { type: 'permission_error', code: 'content_blocked', rule_id: 'dlp.response_too_large' },
    });
    expect(await onlyRecord(stack, id)).toMatchObject({
      status: res.status,
      outcome: 'rejected',
      error: { code: 'content_blocked', status: 403, rule_id: 'dlp.response_too_large' },
    });
  });

  it('an answer ended by upstream trailers: refused, never ended empty or raw; audit with the status the client saw', async () => {
    const id = rid('held-trailers');
    const res = await post(stack, id, {
      'x-mock-trailers': '1',
      'x-mock-content': encodeURIComponent(`Write to ${EMAIL} today.`),
    });
    expectNoRawValue(res);
    // DLP holds the chunked body for its end, which only the trailers announce, and a trailers
    // answer cannot carry a body: the gate fails closed. The answer and its trailers reached
    // Envoy before the headers' answer, so Envoy still holds the headers: a clean 500.
    expect({ status: res.status, complete: res.complete }).toEqual({ status: 500, complete: true });
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: { type: 'server_error' } });
    const rec = await onlyRecord(stack, id);
    expect(rec).toMatchObject({ status: res.status, outcome: 'error' });
    expect(rec.failure).toMatch(/^response trailers ended a body held whole/);
  });
});
