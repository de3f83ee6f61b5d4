// Redis killed under a running gate and started again, through real Envoy: a fail-closed limit
// answers 503 limits_unavailable, a fail-open one admits and flags the audit record, no request
// waits past the message timeout, the gate neither crashes nor needs a restart, and once Redis is
// back both count in Redis again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../harness/gate.ts';
import { waitFor } from '../harness/ports.ts';
import { type Redis, startRedis } from '../harness/redis.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const strict = makeKey('strict', { tenant: 'acme' });
const lenient = makeKey('lenient', { tenant: 'acme' });
const loadClosed = makeKey('load-closed', { tenant: 'acme' });
const loadOpen = makeKey('load-open', { tenant: 'acme' });

let redis: Redis;
let stack: Stack;

beforeAll(async () => {
  redis = await startRedis();
  stack = await startStack({
    keys: [strict, lenient, loadClosed, loadOpen],
    gateExtra: {
      redis: { url: redis.url, keyPrefix: 'e2e-down:' },
      limits: {
        store: 'redis',
        rate: [
          { id: 'strict', scope: 'key', ids: ['strict'], limit: 1000, per: 'minute', onRedisDown: 'closed' },
          { id: 'lenient', scope: 'key', ids: ['lenient'], limit: 3, per: 'minute', onRedisDown: 'open' },
          // limits the load test never reaches: what Redis going away does to requests in flight
          {
            id: 'load-closed',
            scope: 'key',
            ids: ['load-closed'],
            limit: 1_000_000,
            per: 'minute',
            onRedisDown: 'closed',
          },
          { id: 'load-open', scope: 'key', ids: ['load-open'], limit: 1_000_000, per: 'minute', onRedisDown: 'open' },
        ],
        budgets: [
          {
            id: 'lenient-tokens',
            scope: 'key',
            ids: ['lenient'],
            amount: 1_000_000,
            unit: 'tokens',
            period: 'day',
            onRedisDown: 'open',
          },
        ],
      },
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await redis?.stop().catch(() => {});
});

async function chat(key: string): Promise<{ status: number; code?: string; ms: number; id: string }> {
  const t0 = Date.now();
  const r = await fetch(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await r.json()) as { error?: { code: string } };
  return {
    status: r.status,
    ms: Date.now() - t0,
    id: r.headers.get('x-request-id') ?? '',
    ...(body.error ? { code: body.error.code } : {}),
  };
}

describe('limits while Redis is down', () => {
  it('fail closed answers 503, fail open admits and flags, nothing waits, and Redis is used again once back', async () => {
    expect((await chat(strict.key)).status).toBe(200);
    expect((await chat(lenient.key)).status).toBe(200);

    // Both requests' records written, so the outage's are the ones after them.
    const before = (
      await waitFor('the first two records', async () => {
        const all = await stack.gate.audit();
        return all.some((r) => r.limits?.[0]?.id === 'strict') && all.some((r) => r.limits?.[0]?.id === 'lenient')
          ? all
          : undefined;
      })
    ).length;
    await redis.stop();
    const down = await Promise.all([chat(strict.key), chat(strict.key), chat(lenient.key)]);
    expect(down.slice(0, 2).map((r) => [r.status, r.code])).toEqual([
      [503, 'limits_unavailable'],
      [503, 'limits_unavailable'],
    ]);
    expect(down[2]!.status).toBe(200);
    // Envoy's message timeout is 200 ms: every answer is the gate's own, well before it.
    for (const r of down) expect(r.ms).toBeLessThan(1000);
    // Records are written after the answers: wait for the three.
    const records = await waitFor('the three records', async () => {
      const all = await stack.gate.audit();
      return all.length >= before + 3 ? all : undefined;
    });
    const flagged = records.filter((r) => r.limits?.[0]?.fail_open === true);
    expect(flagged).toHaveLength(1);
    expect(flagged[0]).toMatchObject({
      outcome: 'completed',
      limits: [{ id: 'lenient', decision: 'admitted' }],
      // the budget failed open too: reserved and settled in this replica
      budgets: [{ id: 'lenient-tokens', state: 'admitted', fail_open: true }],
    });
    expect(flagged[0]!.budgets[0].settled).toBeGreaterThan(0);
    // counted locally meanwhile: lenient's limit of 3 still holds (1 in Redis is forgotten, 1 + 2 here)
    expect((await chat(lenient.key)).status).toBe(200);
    expect((await chat(lenient.key)).status).toBe(200);
    expect((await chat(lenient.key)).code).toBe('rate_limit_exceeded');
    expect(await stack.gate.metrics()).toMatch(/lmgate_limit_fail_open_total\{limit="limits.rate.lenient"\} [1-9]/);

    await redis.restart();
    const deadline = Date.now() + 10_000;
    let back = await chat(strict.key);
    while (back.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      back = await chat(strict.key);
    }
    expect(back.status).toBe(200);
    // Redis restarted empty: lenient counts from 0 there again, without the flag
    const again = await chat(lenient.key);
    expect(again.status).toBe(200);
    // its record: the one lenient request after the outage that Redis counted (no fail_open)
    const last = await waitFor('its record', async () =>
      (await stack.gate.audit())
        .slice(before + 3)
        .find((r) => r.limits?.[0]?.id === 'lenient' && r.limits[0].fail_open === undefined),
    );
    expect(last.limits[0]).toMatchObject({ id: 'lenient', decision: 'admitted', remaining: 2 });
    expect(last.limits[0].fail_open).toBeUndefined();
    expect(stack.gate.proc.running).toBe(true);
  });

  it('a Redis that hangs (SIGSTOP) is given up on within the message deadline, not waited for', async () => {
    redis.proc.child.kill('SIGSTOP');
    try {
      const [closed, open] = await Promise.all([chat(strict.key), chat(lenient.key)]);
      // the gate's own answers (Envoy would have said 504 after its 200 ms message timeout)
      expect([closed.status, closed.code]).toEqual([503, 'limits_unavailable']);
      // fail open counts in this replica: its local counter still holds the outage's 3 of this minute
      expect([open.status, open.code]).toEqual([429, 'rate_limit_exceeded']);
      expect(closed.ms).toBeLessThan(1000);
    } finally {
      redis.proc.child.kill('SIGCONT');
    }
    const deadline = Date.now() + 10_000;
    let back = await chat(strict.key);
    while (back.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      back = await chat(strict.key);
    }
    expect(back.status).toBe(200);
  });

  it('Redis SIGKILLed under a steady load and started again: each limit as configured, every request answered in time and audited', async () => {
    const results: { key: 'closed' | 'open'; status: number; code?: string; ms: number }[] = [];
    let running = true;
    // four clients in a loop, two per limit, for as long as the outage and recovery take
    const client = async (key: 'closed' | 'open') => {
      while (running) results.push({ key, ...(await chat(key === 'closed' ? loadClosed.key : loadOpen.key)) });
    };
    const clients = [client('closed'), client('open'), client('closed'), client('open')];
    const settle = () => new Promise((r) => setTimeout(r, 400));
    try {
      await settle();
      const before = results.length;
      await redis.proc.stop('SIGKILL');
      await settle();
      const during = results.length;
      await redis.restart();
      // back once a fail-closed request is admitted again, within 10 s
      const deadline = Date.now() + 10_000;
      for (;;) {
        await settle();
        const last = results.filter((r) => r.key === 'closed').at(-1);
        if ((last?.status === 200 && results.length > during) || Date.now() > deadline) break;
      }
      await settle();
      expect(before).toBeGreaterThan(0);
      expect(during).toBeGreaterThan(before);
    } finally {
      running = false;
      await Promise.all(clients);
    }
    const closed = results.filter((r) => r.key === 'closed');
    console.log(
      `redis-down e2e: ${results.length} requests, ${closed.filter((r) => r.status === 503).length} refused 503, slowest ${Math.max(...results.map((r) => r.ms))} ms`,
    );
    const open = results.filter((r) => r.key === 'open');
    // fail closed: the gate's 503 while Redis was gone, admitted otherwise; never anything else
    expect(new Set(closed.map((r) => `${r.status} ${r.code ?? ''}`.trim()))).toEqual(
      new Set(['200', '503 limits_unavailable']),
    );
    expect(closed.at(-1)!.status).toBe(200);
    // fail open: every request admitted, through the outage too
    expect(open.every((r) => r.status === 200)).toBe(true);
    // every answer is the gate's own, well inside Envoy's 200 ms message timeout plus the
    // model's answer (an expired message would have been Envoy's error, not the statuses above)
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(1000);
    // exactly one audit record per request, fail-open ones flagged
    const loadRecords = async () => (await stack.gate.audit()).filter((r) => r.principal?.key_id?.startsWith('load-'));
    await waitFor('the load records', async () => ((await loadRecords()).length >= results.length ? true : undefined));
    const records = await loadRecords();
    expect(records).toHaveLength(results.length);
    expect(records.some((r) => r.limits?.[0]?.id === 'load-open' && r.limits[0].fail_open === true)).toBe(true);
    expect(stack.gate.proc.running).toBe(true);
  });
});
