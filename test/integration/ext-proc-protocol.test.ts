// The stream state machine over a real gRPC stream, driven the way Envoy drives it: one answer
// of the matching type per message, end_of_stream, mode_override, observability mode,
// cancellation, out-of-order and unknown messages, deadlines, drain. None may crash the
// process; every stream leaves exactly one audit record.

import { credentials, status as GrpcStatus, makeGenericClientConstructor } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineStage } from '../../extproc/pipeline/stage.ts';
import { healthServiceDefinition } from '../../extproc/server/health.ts';
import { BodySendMode } from '../../extproc/server/protocol.ts';
import {
  chatBody,
  chatHeadersFor,
  ExtProcClient,
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
const bob = makeKey('bob', { tenant: 'globex', models: ['mock-small'], endpoints: ['openai.chat'] });
/** Any model: a model listing is then passed without being read. */
const carol = makeKey('carol', { tenant: 'acme', models: ['*'] });

const chatHeaders = (key = alice.key, extra: Record<string, string> = {}) => chatHeadersFor(key, extra);

const chunk = (content: string, usage?: unknown) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  model: 'mock-small',
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
  ...(usage === undefined ? {} : { usage }),
});
const usageEvent = {
  id: 'c1',
  object: 'chat.completion.chunk',
  model: 'mock-small',
  choices: [],
  usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
};

const headerSet = (a: any): Record<string, string> =>
  Object.fromEntries(
    (a?.headerMutation?.setHeaders ?? []).map((h: any) => [
      h.header.key,
      Buffer.from(h.header.rawValue).toString('latin1'),
    ]),
  );

const shared = gateForFile([alice, bob, carol]);
const expectAudit = shared.expectAudit;

describe('one answer of the matching type per message', () => {
  it('answers a full streamed chat with the right type each time, injecting usage and withholding it', async () => {
    const s = shared.gate.client.open();
    const h = await s.exchange(requestHeaders(chatHeaders()));
    expect(h.response).toBe('requestHeaders');
    // the credential never goes upstream; the principal does, as trusted headers
    expect(h.requestHeaders?.response?.headerMutation?.removeHeaders).toEqual(
      expect.arrayContaining(['authorization']),
    );
    expect(headerSet(h.requestHeaders?.response)).toMatchObject({
      'x-lmgate-tenant': 'acme',
      'x-lmgate-key-id': 'alice',
    });

    const b = await s.exchange(requestBody(chatBody({ stream: true })));
    expect(b.response).toBe('requestBody');
    const mutated = JSON.parse(Buffer.from(b.requestBody!.response!.bodyMutation!.body!).toString());
    expect(mutated.stream_options).toEqual({ include_usage: true });
    expect(headerSet(b.requestBody?.response)['content-length']).toBe(
      String(Buffer.byteLength(JSON.stringify(mutated))),
    );

    const rh = await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    expect(rh.response).toBe('responseHeaders');
    expect(rh.modeOverride?.responseBodyMode).toBe(BodySendMode.STREAMED);

    const c1 = await s.exchange(responseBody(sse(chunk('Hel'))));
    expect(c1.response).toBe('responseBody');
    expect(c1.responseBody?.response?.bodyMutation).toBeUndefined(); // unchanged chunk: no mutation
    const c2 = await s.exchange(responseBody(sse(usageEvent)));
    expect(c2.response).toBe('responseBody');
    expect(c2.responseBody?.response?.bodyMutation?.clearBody).toBe(true); // usage event withheld
    const c3 = await s.exchange(responseBody('data: [DONE]\n\n', true));
    expect(c3.response).toBe('responseBody');
    // the final answer carries the usage for Envoy's access log (namespace lm_gate)
    const meta = (c3.dynamicMetadata as any).fields.lm_gate.structValue.fields;
    expect(meta.input_tokens.numberValue).toBe(2);
    expect(meta.output_tokens.numberValue).toBe(3);
    expect(meta.usage.stringValue).toBe('upstream');
    s.end();
    expect((await s.status).code).toBe(GrpcStatus.OK);

    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({
      outcome: 'completed',
      status: 200,
      stream: true,
      principal: { tenant: 'acme', key_id: 'alice' },
      gen_ai: {
        request: { model: 'mock-small' },
        response: { model: 'mock-small' },
        usage: { input_tokens: 2, output_tokens: 3 },
      },
      metering: { total_tokens: 5, source: 'upstream' },
    });
    expect(JSON.stringify(rec)).not.toContain(alice.key);
  });

  it('rewriting the body for include_usage keeps every other byte of it (a 64-bit seed survives)', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    const body =
      '{"model":"mock-small","seed":12345678901234567891,"stream":true,"messages":[{"role":"user","content":"x"}]}';
    const b = await s.exchange(requestBody(body));
    const sent = Buffer.from(b.requestBody!.response!.bodyMutation!.body!).toString();
    expect(sent).toContain('"seed":12345678901234567891');
    expect(JSON.parse(sent).stream_options).toEqual({ include_usage: true });
    s.cancel();
    await expectAudit(1);
  });

  it('end of stream in an empty body message (as Envoy sends it) finishes the stream', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody({ stream: true })));
    await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    await s.exchange(responseBody(sse(chunk('Hi'))));
    await s.exchange(responseBody(sse(usageEvent)));
    await s.exchange(responseBody('data: [DONE]\n\n'));
    // An absent bytes field: protobufjs decodes it to its default, not to a Buffer.
    const last = await s.exchange({ responseBody: { endOfStream: true } });
    expect(last.response).toBe('responseBody');
    expect(last.responseBody?.response?.bodyMutation).toBeUndefined();
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({
      outcome: 'completed',
      failure: null,
      gen_ai: { usage: { input_tokens: 2, output_tokens: 3 } },
    });
  });

  it('GET with end_of_stream on the headers: no body expected, NONE when nothing reads the response', async () => {
    const s = shared.gate.client.open();
    const h = await s.exchange(
      requestHeaders({ ...chatHeaders(carol.key), ':method': 'GET', ':path': '/v1/models' }, true),
    );
    expect(h.response).toBe('requestHeaders');
    const rh = await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
    expect(rh.response).toBe('responseHeaders');
    expect(rh.modeOverride?.responseBodyMode ?? BodySendMode.NONE).toBe(BodySendMode.NONE);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ outcome: 'completed', endpoint: { api: 'openai.models' }, gen_ai: { usage: null } });
  });

  it('buffers JSON responses of known, bounded length and reads usage from them', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody()));
    const body = JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      model: 'mock-small-2025',
      choices: [],
      usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 },
    });
    const rh = await s.exchange(
      responseHeaders({ ':status': '200', 'content-type': 'application/json', 'content-length': `${body.length}` }),
    );
    expect(rh.modeOverride?.responseBodyMode).toBe(BodySendMode.BUFFERED);
    const rb = await s.exchange(responseBody(body, true));
    expect(rb.response).toBe('responseBody');
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 7, output_tokens: 1 });
    expect(rec).toMatchObject({
      gen_ai: { request: { model: 'mock-small' }, response: { model: 'mock-small-2025' } },
      upstream_model: 'mock-small',
    });
  });

  it('response headers with end_of_stream finish the request at once', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody()));
    const rh = await s.exchange(responseHeaders({ ':status': '204' }, true));
    expect(rh.response).toBe('responseHeaders');
    expect(rh.modeOverride).toBeUndefined();
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ status: 204, outcome: 'completed', gen_ai: { usage: null } });
  });

  it('upstream errors are not read and are audited as upstream_error', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody({ stream: true })));
    const rh = await s.exchange(responseHeaders({ ':status': '503', 'content-type': 'application/json' }));
    expect(rh.modeOverride?.responseBodyMode ?? BodySendMode.NONE).toBe(BodySendMode.NONE);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ status: 503, outcome: 'upstream_error' });
  });

  it('holds a request body sent in several chunks (STREAMED request mode) and releases it whole with the last', async () => {
    const s = shared.gate.client.open();
    await s.exchange(
      requestHeaders(chatHeaders(), false, { protocolConfig: { requestBodyMode: BodySendMode.STREAMED } }),
    );
    const body = chatBody();
    const a = await s.exchange(requestBody(body.slice(0, 10), false));
    expect(a.response).toBe('requestBody');
    // Nothing of the body leaves Envoy before the stages judged all of it.
    expect(a.requestBody?.response?.bodyMutation?.clearBody).toBe(true);
    const b = await s.exchange(requestBody(body.slice(10), true));
    expect(b.response).toBe('requestBody');
    expect(Buffer.from(b.requestBody!.response!.bodyMutation!.body!).toString()).toBe(body);
    const rh = await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
    expect(rh.response).toBe('responseHeaders');
    await s.exchange(responseBody('{}', true));
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec.gen_ai.request.model).toBe('mock-small');
  });
});

describe('refusals are ImmediateResponses with OpenAI-style errors', () => {
  const table: {
    name: string;
    headers: Record<string, string>;
    body?: string;
    status: number;
    code: string;
    ruleId?: string;
  }[] = [
    { name: 'no key', headers: chatHeaders('', { authorization: '' }), status: 401, code: 'missing_api_key' },
    { name: 'unknown key', headers: chatHeaders('lmg_not-a-real-key'), status: 401, code: 'invalid_api_key' },
    {
      name: 'malformed authorization',
      headers: chatHeaders('', { authorization: 'Basic abc' }),
      status: 401,
      code: 'missing_api_key',
    },
    {
      name: 'endpoint not allowed',
      headers: { ...chatHeaders(bob.key), ':path': '/v1/embeddings' },
      status: 403,
      code: 'endpoint_not_allowed',
      ruleId: 'identity.apiKeys.bob.endpoints',
    },
    {
      name: 'unknown path',
      headers: { ...chatHeaders(), ':path': '/admin/secret' },
      status: 404,
      code: 'unsupported_endpoint',
    },
    {
      name: 'model not allowed',
      headers: chatHeaders(bob.key),
      body: chatBody({ model: 'mock-large' }),
      status: 403,
      code: 'model_not_allowed',
      ruleId: 'identity.apiKeys.bob.models',
    },
    {
      name: 'malformed JSON',
      headers: chatHeaders(),
      body: '{"model": "mock-small", ',
      status: 400,
      code: 'invalid_json',
    },
    {
      name: 'missing messages',
      headers: chatHeaders(),
      body: '{"model":"mock-small"}',
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'gzip body',
      headers: chatHeaders(alice.key, { 'content-encoding': 'gzip' }),
      status: 415,
      code: 'unsupported_content_encoding',
    },
    {
      name: 'UTF-16 body',
      headers: chatHeaders(alice.key, { 'content-type': 'application/json; charset=utf-16' }),
      status: 415,
      code: 'unsupported_charset',
    },
    {
      name: 'declared length over the limit, refused before the body is sent',
      headers: chatHeaders(alice.key, { 'content-length': String(5 * 1024 * 1024) }),
      status: 413,
      code: 'request_too_large',
    },
    {
      name: 'case-variant key (Go servers read the last, case-insensitively)',
      headers: chatHeaders(bob.key),
      body: '{"model":"mock-small","MODEL":"mock-large","messages":[]}',
      status: 400,
      code: 'ambiguous_key',
    },
    {
      name: 'duplicate key',
      headers: chatHeaders(bob.key),
      body: '{"model":"mock-small","messages":[],"model":"mock-large"}',
      status: 400,
      code: 'duplicate_key',
    },
    {
      name: 'nesting over server.maxJsonDepth',
      headers: chatHeaders(),
      body: `{"model":"mock-small","messages":[],"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
      status: 400,
      code: 'json_too_deep',
    },
  ];

  for (const t of table) {
    it(`${t.name} → ${t.status}`, async () => {
      const s = shared.gate.client.open();
      let a = await s.exchange(requestHeaders(t.headers));
      if (t.body !== undefined) {
        expect(a.response).toBe('requestHeaders');
        a = await s.exchange(requestBody(t.body));
      }
      expect(a.response).toBe('immediateResponse');
      const ir = a.immediateResponse!;
      expect(ir.status.code).toBe(t.status);
      const err = JSON.parse(Buffer.from(ir.body!).toString()).error;
      expect(err.code).toBe(t.code);
      expect(err).toHaveProperty('param');
      expect(typeof err.message).toBe('string');
      expect(err.type).toBeTruthy();
      if (t.ruleId) expect(err.rule_id).toBe(t.ruleId);
      // Nothing of the presented credential comes back.
      expect(Buffer.from(ir.body!).toString()).not.toContain('lmg_not-a-real-key');
      s.end();
      const rec = (await expectAudit(1))[0]!;
      expect(rec).toMatchObject({ outcome: 'rejected', status: t.status, error: { code: t.code } });
      if (t.ruleId) expect(rec.error.rule_id).toBe(t.ruleId);
    });
  }

  it('a body over server.maxRequestBodyBytes → 413', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    const big = Buffer.alloc(shared.gate.config.server.maxRequestBodyBytes + 1, 0x20);
    const a = await s.exchange(requestBody(big));
    expect(a.immediateResponse?.status.code).toBe(413);
    s.end();
    await expectAudit(1);
  });

  it('strips spoofed x-lmgate-* headers, also spelt with underscores, before any stage reads them', async () => {
    const s = shared.gate.client.open();
    const a = await s.exchange(
      requestHeaders(
        chatHeaders(alice.key, { 'x-lmgate-tenant': 'evil', 'x-lmgate-key-id': 'root', x_lmgate_tenant: 'evil' }),
      ),
    );
    const removed = a.requestHeaders?.response?.headerMutation?.removeHeaders ?? [];
    expect(removed).toEqual(expect.arrayContaining(['x-lmgate-tenant', 'x-lmgate-key-id', 'x_lmgate_tenant']));
    // ...and the trusted values replace them.
    expect(headerSet(a.requestHeaders?.response)).toMatchObject({
      'x-lmgate-tenant': 'acme',
      'x-lmgate-key-id': 'alice',
    });
    s.cancel();
    await expectAudit(1);
  });
});

describe('protocol errors end the stream with a gRPC error, never a crash', () => {
  const cases: { name: string; msgs: Record<string, unknown>[] }[] = [
    { name: 'a message with no request set', msgs: [{}] },
    { name: 'request body before headers', msgs: [requestBody(chatBody())] },
    { name: 'request headers twice', msgs: [requestHeaders(chatHeaders()), requestHeaders(chatHeaders())] },
    {
      name: 'response body before response headers',
      msgs: [requestHeaders(chatHeaders()), requestBody(chatBody()), responseBody('x')],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const s = shared.gate.client.open();
      for (const m of c.msgs) s.send(m);
      const st = await s.status;
      expect(st.code).toBe(GrpcStatus.FAILED_PRECONDITION);
      expect(st.details).toMatch(/^lm-gate: /);
      const rec = (await expectAudit(1))[0]!;
      expect(rec.outcome).toBe('error');
      expect(rec.failure).toMatch(/^protocol: /);
      // identifiable even when Envoy never sent headers with an x-request-id
      expect(rec.request_id).toMatch(/^\S+$/);
    });
  }

  it('the gate still serves after all of them', async () => {
    const s = shared.gate.client.open();
    const a = await s.exchange(requestHeaders({ ...chatHeaders(), ':method': 'GET', ':path': '/v1/models' }, true));
    expect(a.response).toBe('requestHeaders');
    s.end();
    await expectAudit(1);
  });
});

describe('cancellation and end of stream', () => {
  it('Envoy cancelling mid-request leaves one cancelled audit record', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    await s.exchange(requestBody(chatBody({ stream: true })));
    await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    await s.exchange(responseBody(sse(chunk('partial', { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 }))));
    s.cancel();
    const rec = (await expectAudit(1))[0]!;
    expect(rec.outcome).toBe('cancelled');
    // usage seen before the cut is kept
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 2, output_tokens: 1 });
  });

  it('Envoy half-closing before the response leaves one cancelled record and a clean status', async () => {
    const s = shared.gate.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    s.end();
    expect((await s.status).code).toBe(GrpcStatus.OK);
    const rec = (await expectAudit(1))[0]!;
    expect(rec.outcome).toBe('cancelled');
  });
});

describe('observability mode', () => {
  it('sends no answers, still meters and audits', async () => {
    const s = shared.gate.client.open();
    const obs = { observabilityMode: true };
    // Envoy sends bodies only in STREAMED mode when observing, and no protocol_config.
    const body = chatBody();
    s.send(requestHeaders(chatHeaders(), false, obs));
    s.send(requestBody(body.slice(0, 7), false, obs));
    s.send(requestBody(body.slice(7), true, obs));
    s.send(responseHeaders({ ':status': '200', 'content-type': 'application/json' }, false, obs));
    s.send(
      responseBody(
        JSON.stringify({ model: 'mock-small', usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 } }),
        true,
        obs,
      ),
    );
    expect(await s.silentFor(300)).toBe(true);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 4, output_tokens: 2 });
    expect(rec.gen_ai.request.model).toBe('mock-small');
  });

  it('a BUFFERED request body is never observed: the record keeps the status upstream sent, and says why', async () => {
    const s = shared.gate.client.open();
    const obs = { observabilityMode: true };
    s.send(requestHeaders(chatHeaders(), false, obs));
    s.send(responseHeaders({ ':status': '200', 'content-type': 'application/json' }, true, obs));
    expect(await s.silentFor(200)).toBe(true);
    s.end();
    const rec = (await expectAudit(1))[0]!;
    expect(rec).toMatchObject({ status: 200, outcome: 'completed' });
    expect(rec.failure).toMatch(/not observed/);
  });
});

describe('message deadline', () => {
  let slow: InProcessGate;
  beforeAll(async () => {
    const hang = defineStage({
      name: 'test.hang',
      summary: 'takes a second over every request body',
      needs: [],
      provides: [],
      always: true,
      create: () => ({ onRequestBody: () => new Promise<void>((r) => setTimeout(r, 1000)) }),
    });
    slow = await startInProcessGate([alice], {
      extra: { server: { messageDeadlineMs: 100 } },
      extraStages: [hang],
    });
  });
  afterAll(() => slow.stop());

  it('a stage that does not answer in time gets the client a 503, and its late result is dropped', async () => {
    const s = slow.client.open();
    await s.exchange(requestHeaders(chatHeaders()));
    const t0 = Date.now();
    const a = await s.exchange(requestBody(chatBody()));
    expect(Date.now() - t0).toBeLessThan(900);
    expect(a.immediateResponse?.status.code).toBe(503);
    expect(JSON.parse(Buffer.from(a.immediateResponse!.body!).toString()).error.code).toBe('gateway_timeout');
    // the hanging stage finishes later: no second answer
    expect(await s.silentFor(1200)).toBe(true);
    s.end();
    const records = await slow.waitAudit(1);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'error', status: 503 });
  });
});

describe('audit sink failure', () => {
  it('fails closed with 503 while the sink cannot write, loses no record, and recovers', async () => {
    const { mkdtemp, mkdir, readFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'lmg-audit-'));
    const path = join(dir, 'not-yet', 'audit.log'); // the folder is missing: writes fail
    const g = await startInProcessGate([alice], { extra: { audit: { path } } });
    try {
      const models = { ...chatHeaders(), ':method': 'GET', ':path': '/v1/models' };
      const first = g.client.open();
      expect((await first.exchange(requestHeaders(models, true))).response).toBe('requestHeaders');
      await first.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }, true));
      first.end();
      await waitFor('sink failing', async () => (g.audit.accepting ? undefined : true));

      const refused = g.client.open();
      const a = await refused.exchange(requestHeaders(models, true));
      expect(a.immediateResponse?.status.code).toBe(503);
      expect(JSON.parse(Buffer.from(a.immediateResponse!.body!).toString()).error.code).toBe('audit_unavailable');
      refused.end();

      await mkdir(join(dir, 'not-yet'));
      await waitFor('sink recovered', async () => (g.audit.accepting ? true : undefined), 5000);
      const records = (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(records.map((r) => [r.outcome, r.error?.code ?? null])).toEqual([
        ['completed', null],
        ['rejected', 'audit_unavailable'],
      ]);
    } finally {
      await g.stop();
    }
  });
});

describe('serving and draining', () => {
  it('listens on a Unix socket too', async () => {
    const g = await startInProcessGate([alice], { unixSocket: true });
    const sock = g.config.server.unixSocket!;
    const client = new ExtProcClient(`unix:${sock}`);
    const s = client.open();
    const a = await s.exchange(requestHeaders({ ...chatHeaders(), ':method': 'GET', ':path': '/v1/models' }, true));
    expect(a.response).toBe('requestHeaders');
    s.end();
    client.close();
    await g.waitAudit(1);
    await g.stop();
  });

  it('drain: in-flight streams finish, new ones get 503, health reports NOT_SERVING', async () => {
    const g = await startInProcessGate([alice]);
    const inflight = g.client.open();
    await inflight.exchange(requestHeaders(chatHeaders()));
    await inflight.exchange(requestBody(chatBody({ stream: true })));
    expect(await healthCheck(g.server.grpcPort)).toBe(1); // SERVING
    const drained = g.server.drain(5000);
    expect(await healthCheck(g.server.grpcPort)).toBe(2); // NOT_SERVING

    const late = g.client.open();
    const refused = await late.exchange(requestHeaders(chatHeaders()));
    expect(refused.immediateResponse?.status.code).toBe(503);
    late.end();

    // the in-flight request still completes normally
    const rh = await inflight.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    expect(rh.modeOverride?.responseBodyMode).toBe(BodySendMode.STREAMED);
    await inflight.exchange(responseBody(sse(usageEvent)));
    await inflight.exchange(responseBody('data: [DONE]\n\n', true));
    inflight.end();
    expect(await drained).toEqual({ completed: true, cut: 0 });
    const records = await g.waitAudit(2);
    expect(records.map((r) => r.outcome).sort()).toEqual(['completed', 'rejected']);
    expect(records.find((r) => r.outcome === 'rejected')?.error.code).toBe('draining');
    await g.stop();
  });

  it('drain deadline: streams still open are cut and audited as cancelled', async () => {
    const g = await startInProcessGate([alice]);
    const stuck = g.client.open();
    await stuck.exchange(requestHeaders(chatHeaders()));
    expect(await g.server.drain(200)).toEqual({ completed: false, cut: 1 });
    const rec = (await g.waitAudit(1))[0]!;
    expect(rec).toMatchObject({ outcome: 'cancelled', failure: 'drain deadline reached' });
    await g.stop();
  });
});

function healthCheck(port: number): Promise<number> {
  const Health = makeGenericClientConstructor(healthServiceDefinition, 'Health');
  const c = new Health(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as {
    Check(req: object, cb: (err: Error | null, res?: { status: number }) => void): void;
    close(): void;
  };
  return new Promise((resolve, reject) =>
    c.Check({ service: 'envoy.service.ext_proc.v3.ExternalProcessor' }, (err, res) => {
      c.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}
