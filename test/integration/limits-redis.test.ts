// The limits' Redis store against a real redis-server: one script call per admission admits
// exactly the limit under concurrency, all or nothing across levels; settling and refunds; and
// Redis going away and coming back: fail-closed limits answer 503 limits_unavailable within the
// message deadline, fail-open limits count in this replica and say so, and the store is used
// again after the restart, without one of ours.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../extproc/config/schema.ts';
import { LimitBackend } from '../../extproc/limits/backend.ts';
import { type CounterItem, waitMs } from '../../extproc/limits/counters.ts';
import { MemoryLimitStore } from '../../extproc/limits/memory-store.ts';
import { GateError } from '../../extproc/pipeline/errors.ts';
import { systemClock } from '../../extproc/pipeline/stage.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { waitFor } from '../harness/ports.ts';
import { type Redis, startRedis } from '../harness/redis.ts';

let redis: Redis;
let backend: LimitBackend;
let metrics: Metrics;

beforeAll(async () => {
  redis = await startRedis();
  const config = configSchema.parse({
    audit: { path: '-' },
    redis: { url: redis.url, keyPrefix: `t${process.pid}:` },
    limits: { store: 'redis', rate: [{ id: 'x', scope: 'key', limit: 1, per: 'minute' }] },
  });
  metrics = new Metrics({ defaultMetrics: false });
  backend = new LimitBackend({ config, logger: pino({ level: 'silent' }), metrics, clock: systemClock });
  await waitFor('limits connection', async () => ((await redisReady()) ? true : undefined));
});
afterAll(async () => {
  backend?.close();
  await redis?.stop();
});

async function redisReady(): Promise<boolean> {
  try {
    await backend.storeFor(configWithRedis()).adjust([], []);
    return true;
  } catch {
    return false;
  }
}

const configWithRedis = () =>
  configSchema.parse({
    audit: { path: '-' },
    redis: { url: redis.url },
    limits: { store: 'redis' },
  });

let n = 0;
const rate = (limit: number, periodMs = 60_000, queue = 0, cost = 1): CounterItem => ({
  kind: 'rate',
  key: `lim:{t:x}:test${n++}`,
  limit,
  period: periodMs,
  cost,
  queue,
});

describe('Redis limit store', () => {
  it('admits exactly the limit when 50 acquire at once', async () => {
    const store = backend.storeFor(configWithRedis());
    const item = rate(10);
    const results = await Promise.all(Array.from({ length: 50 }, () => store.acquire([item])));
    expect(results.filter((r) => r.admitted)).toHaveLength(10);
  });

  it('is all or nothing across levels: a full team leaves the key untouched', async () => {
    const store = backend.storeFor(configWithRedis());
    const key = rate(5);
    const team = rate(1);
    expect((await store.acquire([key, team])).admitted).toBe(true);
    const r = await store.acquire([key, team]);
    expect(r).toMatchObject({ admitted: false, denied: 1 });
    const alone = await store.acquire([key]);
    // GCRA state: 2 of 5 spent → 3 left after this one
    expect(alone.admitted).toBe(true);
    expect(alone.states[0]! - alone.now).toBeCloseTo(2 * 12_000, -2);
  });

  it('queues as the memory store does: the same admissions, waits and refusals (counters.ts)', async () => {
    const store = backend.storeFor(configWithRedis());
    // 4 a minute (a turn every 15 s), a queue of 40 s; costs 1, 2, 1, 1, 3, 1 (3 never fits).
    const costs = [1, 2, 1, 1, 3, 1, 1];
    const item = (cost: number, key: string): CounterItem => ({ ...rate(4, 60_000, 40_000, cost), key });
    const redisKey = `lim:{t:x}:queue${n++}`;
    const memory = new MemoryLimitStore({ maxEntries: 10, clock: { now: () => Date.now() } });
    const seen = async (s: { acquire: typeof store.acquire }, key: string) => {
      const out: string[] = [];
      for (const c of costs) {
        const r = await s.acquire([item(c, key)]);
        // seconds of wait, rounded: the two stores' clocks differ by the call's milliseconds
        out.push(r.admitted ? `wait ${Math.round(waitMs(item(c, key), r.states[0], r.now) / 1000)}` : 'refused');
      }
      return out;
    };
    const expected = ['wait 0', 'wait 0', 'wait 0', 'wait 15', 'refused', 'wait 30', 'refused'];
    expect(await seen(memory, 'm')).toEqual(expected);
    expect(await seen(store, redisKey)).toEqual(expected);
  });

  it('settles and refunds: budgets add what was spent, rate buckets give back', async () => {
    const store = backend.storeFor(configWithRedis());
    const budget: CounterItem = {
      kind: 'budget',
      key: `lim:{t:x}:b${n++}`,
      limit: 1,
      period: Date.now() + 60_000,
      cost: 0.4,
      queue: 0,
    };
    expect((await store.acquire([budget])).states).toEqual([0.4]);
    const settled = await store.adjust([budget], [-0.3]);
    expect(settled.before[0]).toBeCloseTo(0.4);
    expect(settled.after[0]).toBeCloseTo(0.1);
    // admitted while something is left: 0.1 + 0.95 goes over by less than the reservation
    expect((await store.acquire([{ ...budget, cost: 0.95 }])).admitted).toBe(true);
    expect((await store.acquire([{ ...budget, cost: 0.01 }])).admitted).toBe(false);
    const item = rate(1);
    expect((await store.acquire([item])).admitted).toBe(true);
    expect((await store.acquire([item])).admitted).toBe(false);
    await store.adjust([item], [-1]);
    expect((await store.acquire([item])).admitted).toBe(true);
  });

  it('Redis down: closed refuses with 503 within the deadline, open counts here; both recover after a restart', async () => {
    const store = backend.storeFor(configWithRedis());
    await redis.stop();
    const item = rate(2);
    const t0 = Date.now();
    let refused: unknown;
    try {
      await backend.acquire(store, [item], [{ open: false, ruleId: 'limits.rate.closed' }]);
    } catch (err) {
      refused = err;
    }
    expect(Date.now() - t0).toBeLessThan(150);
    expect(refused).toBeInstanceOf(GateError);
    expect(refused).toMatchObject({ code: 'limits_unavailable', status: 503, ruleId: 'limits.rate.closed' });

    const open = await backend.acquire(store, [item], [{ open: true, ruleId: 'limits.rate.open' }]);
    expect(open).toMatchObject({ failOpen: true, store: backend.memory, result: { admitted: true } });
    // counted locally: the local limit still holds while Redis is away
    await backend.acquire(store, [item], [{ open: true, ruleId: 'limits.rate.open' }]);
    expect((await backend.acquire(store, [item], [{ open: true, ruleId: 'limits.rate.open' }])).result.admitted).toBe(
      false,
    );
    const text = await metrics.metricsText();
    expect(text).toMatch(/lmgate_limit_fail_open_total\{limit="limits.rate.open"\} 3/);
    expect(text).toMatch(/lmgate_redis_connected\{role="limits"\} 0/);

    await redis.restart();
    await waitFor('limits reconnect', async () => ((await redisReady()) ? true : undefined), 10_000);
    const back = await backend.acquire(store, [rate(1)], [{ open: false, ruleId: 'limits.rate.closed' }]);
    expect(back).toMatchObject({ failOpen: false, store, result: { admitted: true } });
  });
});
