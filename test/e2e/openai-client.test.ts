// End to end: the official openai client → real Envoy → LM Gate (its own process, over gRPC)
// → the mock model server, and back. What the client receives, what reached the model server,
// what Envoy logged and what the gate audited.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyVersion } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
const bob = makeKey('bob', { tenant: 'globex', models: ['mock-small'], endpoints: ['openai.chat'] });
const carol = makeKey('carol', { tenant: 'globex', models: ['mock-small'] });

let stack: Stack;
const client = (key: string, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) =>
  new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, ...extra });

beforeAll(async () => {
  console.log(`e2e against real Envoy: ${envoyVersion()}`);
  stack = await startStack({ keys: [alice, bob, carol], mock: { chunks: 6 } });
});
afterAll(async () => {
  await stack?.stop();
});

/** The mock's record of the last request to a path. */
const lastUpstream = (path: string) => {
  const r = stack.mock.received.filter((x) => x.path === path).at(-1);
  if (!r) throw new Error(`nothing reached ${path}`);
  return r;
};

describe('through real Envoy with the openai client', () => {
  it('non-streamed chat: the client gets the mock answer; the audit has usage; the key never went upstream', async () => {
    const res = await client(alice.key)
      .chat.completions.create({ model: 'mock-small', messages: [{ role: 'user', content: 'say hello to the gate' }] })
      .withResponse();
    const completion = res.data;
    expect(completion.choices[0]?.message.content).toBe('Hello from the mock model server! ');
    expect(completion.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });

    const upstream = lastUpstream('/v1/chat/completions');
    expect(upstream.headers.authorization).toBeUndefined();
    expect(upstream.headers['x-lmgate-tenant']).toBe('acme');
    expect(upstream.headers['x-lmgate-key-id']).toBe('alice');
    expect(upstream.json).toMatchObject({
      model: 'mock-small',
      messages: [{ role: 'user', content: 'say hello to the gate' }],
    });

    const requestId = res.response.headers.get('x-request-id') ?? (upstream.headers['x-request-id'] as string);
    const rec = await stack.gate.auditFor(requestId);
    expect(rec).toMatchObject({
      outcome: 'completed',
      status: 200,
      stream: false,
      principal: { tenant: 'acme', key_id: 'alice', method: 'api_key' },
      endpoint: { method: 'POST', path: '/v1/chat/completions', api: 'openai.chat' },
      gen_ai: {
        request: { model: 'mock-small' },
        response: { model: 'mock-small' },
        usage: { input_tokens: 5, output_tokens: 6 },
      },
      metering: { total_tokens: 11, source: 'upstream' },
    });
    const audit = JSON.stringify(await stack.gate.audit());
    expect(audit).not.toContain(alice.key);
    expect(audit).not.toContain('say hello to the gate');
  });

  it('streamed chat without usage requested: exactly what the mock sent, no usage event, usage in the audit', async () => {
    const stream = await client(alice.key).chat.completions.create({
      model: 'mock-small',
      messages: [{ role: 'user', content: 'héllo 世界 🙂 stream please' }],
      stream: true,
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    // the mock's stream: a role chunk, 6 content chunks, a finish chunk — and no usage chunk
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('Hello from the mock model server! ');
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');

    // upstream was asked for usage on the client's behalf...
    const upstream = lastUpstream('/v1/chat/completions');
    expect(upstream.json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    if (process.env.LMG_E2E_FULL_DUPLEX) {
      // FULL_DUPLEX_STREAMED: Envoy drops the request's length and sends the rewritten body chunked.
      expect(upstream.headers['content-length']).toBeUndefined();
      expect(upstream.headers['transfer-encoding']).toBe('chunked');
    } else {
      expect(Number(upstream.headers['content-length'])).toBe(upstream.body.length);
    }
    // ...and the audit carries the mock's usage although the client never asked for it
    const rec = await stack.gate.auditFor(upstream.headers['x-request-id'] as string);
    expect(rec).toMatchObject({
      stream: true,
      outcome: 'completed',
      gen_ai: { usage: { input_tokens: 5, output_tokens: 6 } },
      metering: { total_tokens: 11 },
    });
    expect(rec.decisions).toEqual(
      expect.arrayContaining([expect.objectContaining({ rule_id: 'metering.injectStreamUsage', effect: 'modify' })]),
    );
  });

  it('streamed chat with include_usage: the client gets the usage event it asked for', async () => {
    const stream = await client(alice.key).chat.completions.create({
      model: 'mock-large',
      messages: [{ role: 'user', content: 'count me' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 6, total_tokens: 8 });
    const rec = await stack.gate.auditFor(lastUpstream('/v1/chat/completions').headers['x-request-id'] as string);
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 2, output_tokens: 6 });
    expect(rec.decisions.some((d: any) => d.rule_id === 'metering.injectStreamUsage')).toBe(false);
  });

  it('a stream split mid-character and mid-event reaches the client intact', async () => {
    const stream = await client(alice.key).chat.completions.create(
      { model: 'mock-small', messages: [{ role: 'user', content: 'split' }], stream: true },
      { headers: { 'x-mock-split': '1', 'x-mock-content': encodeURIComponent('añb€c😀d世e') } },
    );
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('añb€c😀d世e');
    const rec = await stack.gate.auditFor(lastUpstream('/v1/chat/completions').headers['x-request-id'] as string);
    expect(rec.gen_ai.usage).not.toBeNull();
  });

  it('a client that goes away mid-stream leaves one cancelled audit record', async () => {
    const controller = new AbortController();
    const stream = await client(alice.key).chat.completions.create(
      { model: 'mock-small', messages: [{ role: 'user', content: 'long one' }], stream: true },
      { headers: { 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '50' }, signal: controller.signal },
    );
    let seen = 0;
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta?.content && ++seen === 3) controller.abort();
      }
    } catch {
      // the SDK may end the iteration quietly or throw on abort; either is fine here
    }
    expect(seen).toBe(3);
    const id = lastUpstream('/v1/chat/completions').headers['x-request-id'] as string;
    const rec = await stack.gate.auditFor(id);
    // Charged the prompt and what it received, counted by the gate: upstream's usage never came.
    expect(rec).toMatchObject({ outcome: 'cancelled', stream: true, metering: { source: 'estimated' } });
    expect(rec.gen_ai.usage.output_tokens).toBeGreaterThan(0);
    // exactly one record for it
    expect((await stack.gate.audit()).filter((r) => r.request_id === id)).toHaveLength(1);
  });

  it('401 for a missing or unknown key, with an OpenAI error the SDK understands', async () => {
    const err = await client('lmg_wrong')
      .chat.completions.create({ model: 'mock-small', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('invalid_api_key');
    expect(err.message).not.toContain('lmg_wrong');
  });

  it('403 for a model the key may not use, naming the rule', async () => {
    const before = stack.mock.received.length;
    const err = await client(bob.key)
      .chat.completions.create({ model: 'mock-large', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err.code).toBe('model_not_allowed');
    expect(err.error.rule_id).toBe('identity.apiKeys.bob.models');
    expect(err.headers.get('x-lmgate-rule')).toBeNull(); // x-lmgate-* never reaches a client
    expect(stack.mock.received.length).toBe(before); // nothing reached the model server
  });

  it('403 for an endpoint the key may not call', async () => {
    const err = await client(bob.key)
      .embeddings.create({ model: 'mock-small', input: 'x' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err.code).toBe('endpoint_not_allowed');
  });

  it('400 for a malformed body, 413 for an oversized one', async () => {
    const bad = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
      body: '{"model":"mock-small","messages":[',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });

    const big = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] }),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).error.code).toBe('request_too_large');
  });

  it('embeddings and the model list go through and are metered', async () => {
    const emb = await client(alice.key).embeddings.create({ model: 'mock-small', input: ['one two', 'three'] });
    expect(emb.data).toHaveLength(2);
    const models = await client(alice.key).models.list();
    expect(models.data.map((m) => m.id)).toContain('mock-small');
    const rec = await stack.gate.auditFor(lastUpstream('/v1/embeddings').headers['x-request-id'] as string);
    expect(rec.gen_ai.usage).toMatchObject({ input_tokens: 3, output_tokens: 0 });
  });

  it('model listings show a caller only the models it may use (OpenAI and Ollama)', async () => {
    expect((await client(alice.key).models.list()).data.map((m) => m.id)).toEqual(['mock-small', 'mock-large']);
    expect((await client(carol.key).models.list()).data.map((m) => m.id)).toEqual(['mock-small']);
    const tags = await fetch(`${stack.envoy.url}/api/tags`, { headers: { authorization: `Bearer ${carol.key}` } });
    expect(tags.status).toBe(200);
    expect(((await tags.json()) as { models: { name: string }[] }).models.map((m) => m.name)).toEqual(['mock-small']);
  });

  it('Ollama NDJSON chat streams through and is metered from the done line', async () => {
    const res = await fetch(`${stack.envoy.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi ollama' }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ done: true, prompt_eval_count: 2, eval_count: 6 });
    const rec = await stack.gate.auditFor(lastUpstream('/api/chat').headers['x-request-id'] as string);
    expect(rec).toMatchObject({
      stream: true,
      endpoint: { api: 'ollama.chat' },
      gen_ai: { usage: { input_tokens: 2, output_tokens: 6 } },
    });
  });

  it('a spoofed x-lmgate-* header never reaches the model server', async () => {
    await client(alice.key).chat.completions.create(
      { model: 'mock-small', messages: [{ role: 'user', content: 'x' }] },
      { headers: { 'x-lmgate-tenant': 'evil-corp', 'x-lmgate-admin': 'true' } },
    );
    const upstream = lastUpstream('/v1/chat/completions');
    expect(upstream.headers['x-lmgate-tenant']).toBe('acme');
    expect(upstream.headers['x-lmgate-admin']).toBeUndefined();
  });

  it("Envoy's access log prints the gate's lm_gate dynamic metadata", async () => {
    await client(alice.key).chat.completions.create({
      model: 'mock-small',
      messages: [{ role: 'user', content: 'log me' }],
    });
    const id = lastUpstream('/v1/chat/completions').headers['x-request-id'];
    const line = await waitForLog(id as string);
    expect(line.lm_gate).toMatchObject({
      tenant: 'acme',
      principal_id: 'alice',
      api: 'openai.chat',
      model_requested: 'mock-small',
      input_tokens: 2,
      output_tokens: 6,
      usage: 'upstream',
    });
    expect(JSON.stringify(line)).not.toContain(alice.key);
  });

  it('the gate reports per-phase processing time on /metrics', async () => {
    const m = await stack.gate.metrics();
    for (const phase of ['request_headers', 'request_body', 'response_headers', 'response_body']) {
      expect(m).toMatch(new RegExp(`lmgate_phase_duration_seconds_count\\{phase="${phase}"\\} [1-9]`));
    }
    expect(m).toMatch(/lmgate_requests_total\{outcome="completed",api="openai.chat",status_class="2xx"\} [1-9]/);
    expect(m).toMatch(/lmgate_tokens_total\{direction="input",model="mock-small"\} [1-9]/);
  });
});

async function waitForLog(requestId: string): Promise<Record<string, any>> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const line = stack.envoy.accessLog().find((l) => l.request_id === requestId);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no access log line for ${requestId}\n${stack.envoy.proc.describe()}`);
}
