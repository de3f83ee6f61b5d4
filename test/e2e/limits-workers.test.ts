// limits.store: memory with server.workers: 2 through real Envoy (one endpoint per worker): the
// workers count in the main thread's one store, so a limit of 10 an hour admits exactly 10 of 40
// requests spread over both workers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extProcFilter } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme' });
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    keys: [alice],
    workers: 2,
    // Counting, not latency: on a loaded machine a message may wait past the shipped 200 ms.
    editEnvoy: (cfg) => {
      const ep = extProcFilter(cfg);
      ep.message_timeout = '10s';
      ep.max_message_timeout = '10s';
    },
    gateExtra: {
      server: { messageDeadlineMs: 8000, maxMessageDeadlineMs: 8000 },
      limits: {
        rate: [{ id: 'per-key', scope: 'key', limit: 10, per: 'hour' }],
      },
    },
  });
});
afterAll(() => stack?.stop());

/** Envoy's requests per lm_gate endpoint, from its admin /clusters. */
async function perWorker(): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${stack.envoy.ports.admin}/clusters`)).text();
  return [...text.matchAll(/^lm_gate::127\.0\.0\.1:\d+::rq_total::(\d+)$/gm)].map((m) => Number(m[1]));
}

describe('memory limits across gate workers', () => {
  it('admit exactly the limit, whichever worker each request reached', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const r = await fetch(`${stack.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: `n ${i}` }] }),
        });
        await r.body?.cancel();
        return r.status;
      }),
    );
    expect(
      statuses.filter((s) => s === 200),
      String(statuses),
    ).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30);
    const served = await perWorker();
    expect(served).toHaveLength(2);
    for (const n of served) expect(n).toBeGreaterThan(0);

    const after = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(after.status).toBe(429);
  });
});
