// A byte rate limit with a queue, through real Envoy on the shipped filter config (message_timeout
// 200 ms, max_message_timeout 2 s), driven by the official openai client: a tenant's upload over
// its limit waits for its turn, longer than Envoy's message_timeout (the gate asks Envoy to wait
// with override_message_timeout), and is served; one whose turn is beyond the queue waits the
// queue and gets 429 with retry-after, and never reaches the model server. Each leaves one audit
// record saying how long it waited.
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const uploader = makeKey('uploader', { tenant: 'acme', models: ['mock-*'] });
const other = makeKey('other', { tenant: 'globex', models: ['mock-*'] });

// 2000 body bytes a second per tenant (one byte every 0.5 ms), a queue of 1200 ms. Three bodies
// of 1500 bytes at once: one at once, one after ~500 ms, and one whose turn is ~1250 ms away.
const LIMIT = 2000;
const BODY = 1500;
const QUEUE_MS = 1200;

/** Chat messages whose request body is exactly BODY bytes. */
function messagesOf(bytes: number): { role: 'user'; content: string }[] {
  const base = JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: '' }] }).length;
  return [{ role: 'user', content: 'x'.repeat(bytes - base) }];
}

async function send(client: OpenAI, id: string) {
  const t0 = performance.now();
  try {
    await client.chat.completions.create(
      { model: 'mock-small', messages: messagesOf(BODY) },
      { headers: { 'x-request-id': id } },
    );
    return { id, status: 200, ms: performance.now() - t0, retryAfter: undefined };
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    return { id, status: err.status, ms: performance.now() - t0, retryAfter: err.headers?.get('retry-after') };
  }
}

// One gate thread decides with the memory store at once; with two workers the store is on the
// main thread and answers later, so the gate learns of the wait after its message deadline was
// set and moves it (ctx.takeLonger).
describe.each([
  ['one gate thread', undefined],
  ['two gate workers (the store answers asynchronously)', 2],
])('a byte limit with a queue through real Envoy: %s', (_name, workers) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [uploader, other],
      ...(workers ? { workers } : {}),
      gateExtra: {
        limits: {
          rate: [{ id: 'uploads', scope: 'tenant', unit: 'bytes', limit: LIMIT, per: 'second', queueMs: QUEUE_MS }],
        },
      },
    });
  });
  afterAll(() => stack?.stop());

  it('paces a tenant’s uploads past message_timeout, refuses past the queue, and leaves the other tenant alone', async () => {
    const client = new OpenAI({ baseURL: stack.baseURL, apiKey: uploader.key, maxRetries: 0 });
    const ids = [0, 1, 2].map(() => randomUUID());
    const results = (await Promise.all(ids.map((id) => send(client, id)))).sort((a, b) => a.ms - b.ms);
    expect(results.map((r) => r.status)).toEqual([200, 200, 429]);
    const [now, waited, refused] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
    expect(waited.ms).toBeGreaterThanOrEqual(400); // past Envoy's 200 ms message_timeout
    expect(refused.ms).toBeGreaterThanOrEqual(QUEUE_MS - 100);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);

    // The refused body never reached the model server.
    const served = stack.mock.received.map((r) => r.headers['x-request-id']);
    expect(served).toContain(now.id);
    expect(served).toContain(waited.id);
    expect(served).not.toContain(refused.id);

    const recWaited = await stack.gate.auditFor(waited.id);
    expect(recWaited).toMatchObject({ outcome: 'completed', status: 200 });
    expect(recWaited.limits).toEqual([
      expect.objectContaining({ id: 'uploads', level: 'tenant:acme', unit: 'bytes', decision: 'admitted' }),
    ]);
    expect(recWaited.limits[0].queued_ms).toBeGreaterThanOrEqual(400);
    const recRefused = await stack.gate.auditFor(refused.id);
    expect(recRefused).toMatchObject({ outcome: 'rejected', status: 429 });
    expect(recRefused.limits[0]).toMatchObject({ decision: 'refused' });
    expect(recRefused.limits[0].queued_ms).toBeGreaterThanOrEqual(QUEUE_MS - 100);
    expect((await stack.gate.auditFor(now.id)).limits[0].queued_ms).toBeUndefined();

    // Another tenant has its own bucket: served at once meanwhile.
    const mine = await send(new OpenAI({ baseURL: stack.baseURL, apiKey: other.key, maxRetries: 0 }), randomUUID());
    expect(mine.status).toBe(200);
    expect(mine.ms).toBeLessThan(400);

    const metrics = await stack.gate.metrics();
    expect(metrics).toMatch(/lmgate_limit_queued_total\{limit="uploads",result="admitted"\} 1/);
    expect(metrics).toMatch(/lmgate_limit_queued_total\{limit="uploads",result="refused"\} 1/);
    expect(metrics).toMatch(/lmgate_limit_waiting 0/);
  });
});
