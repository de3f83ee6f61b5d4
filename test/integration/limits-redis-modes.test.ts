// The limit store on a real Sentinel deployment (a master and a sentinel) and a real 3-node
// Redis Cluster: connections from the redis section's sentinel and cluster modes, the script
// loaded and run on each, exact under concurrency, and on the Cluster a request whose levels live
// in different hash slots (caller levels {t:<tenant>}, a model limit {m:<model>}) admitted or
// refused as a whole.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../extproc/config/schema.ts';
import { RedisKillStore } from '../../extproc/killswitch/redis-store.ts';
import { LimitBackend } from '../../extproc/limits/backend.ts';
import type { CounterItem } from '../../extproc/limits/counters.ts';
import { hashTag } from '../../extproc/limits/redis-store.ts';
import { systemClock } from '../../extproc/pipeline/stage.ts';
import { redisConfig } from '../../extproc/redis/config.ts';
import { RedisConnection } from '../../extproc/redis/connection.ts';
import { RedisMetrics } from '../../extproc/redis/metrics.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { waitFor } from '../harness/ports.ts';
import { type RedisCluster, type RedisSentinel, startRedisCluster, startRedisSentinel } from '../harness/redis.ts';

function backendFor(redis: Record<string, unknown>) {
  // Correctness, not latency: a loaded 2-core machine may take longer than the 120 ms the
  // default deadline leaves a limits call.
  const config = configSchema.parse({
    audit: { path: '-' },
    server: { messageDeadlineMs: 2000, maxMessageDeadlineMs: 2000 },
    redis: { ...redis, commandTimeoutMs: 2000 },
    limits: { store: 'redis' },
  });
  const backend = new LimitBackend({
    config,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    clock: systemClock,
  });
  return { backend, store: backend.storeFor(config) };
}

let n = 0;
const item = (tag: string, limit: number): CounterItem => ({
  kind: 'rate',
  key: `t:lim:{${tag}}:c${n++}`,
  limit,
  period: 60_000,
  cost: 1,
  queue: 0,
});

async function ready(store: ReturnType<typeof backendFor>['store']): Promise<void> {
  await waitFor(
    'limits store answers',
    async () => {
      try {
        await store.acquire([item('t:probe', 1000)]);
        return true;
      } catch {
        return undefined;
      }
    },
    15_000,
  );
}

describe('Sentinel', () => {
  let sentinel: RedisSentinel;
  let b: ReturnType<typeof backendFor>;
  beforeAll(async () => {
    sentinel = await startRedisSentinel('lmgate');
    b = backendFor({ sentinel: { name: 'lmgate', sentinels: [sentinel.address] } });
    await ready(b.store);
  });
  afterAll(async () => {
    b?.backend.close();
    await sentinel?.stop();
  });

  it('finds the master through the sentinel and admits exactly the limit', async () => {
    const it1 = item('t:acme', 5);
    const results = await Promise.all(Array.from({ length: 20 }, () => b.store.acquire([it1])));
    expect(results.filter((r) => r.admitted)).toHaveLength(5);
  });
});

describe('Cluster', () => {
  let cluster: RedisCluster;
  let b: ReturnType<typeof backendFor>;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    b = backendFor({ cluster: { nodes: cluster.addresses } });
    await ready(b.store);
  }, 60_000);
  afterAll(async () => {
    b?.backend.close();
    await cluster?.stop();
  });

  it('the kill switch store runs on it too: its keys share the {kill} slot', async () => {
    const conn = new RedisConnection({
      config: redisConfig.parse({ cluster: { nodes: cluster.addresses }, keyPrefix: 't:' })!,
      role: 'kill-test',
      logger: pino({ level: 'silent' }),
      metrics: RedisMetrics.for(new Metrics({ defaultMetrics: false }).registry),
    });
    try {
      await waitFor('kill connection', async () => (conn.ready ? true : undefined), 15_000);
      const store = new RedisKillStore(conn);
      expect(await store.kill('tenant', 'initech', { at: 1, source: 'cli' })).toBeGreaterThan(0);
      const snap = await store.snapshot(100);
      expect(snap.entries).toEqual([['tenant', 'initech', { at: 1, source: 'cli' }]]);
    } finally {
      conn.close();
    }
  });

  it('keys carry the hash tag of their level', () => {
    expect(hashTag('lmgate:lim:{t:acme}:per-key:r:key:k1')).toBe('t:acme');
    expect(hashTag('lmgate:lim:{m:llama}:m:r:model:llama')).toBe('m:llama');
    expect(hashTag('no-tag')).toBe('no-tag');
  });

  it('admits exactly the limit under concurrency', async () => {
    const it1 = item('t:acme', 7);
    const results = await Promise.all(Array.from({ length: 30 }, () => b.store.acquire([it1])));
    expect(results.filter((r) => r.admitted)).toHaveLength(7);
  });

  it('a request across slots is all or nothing: the model slot refusing refunds the tenant slot', async () => {
    const key = item('t:globex', 10);
    const model = item('m:big', 1);
    expect((await b.store.acquire([key, model])).admitted).toBe(true);
    const refused = await b.store.acquire([key, model]);
    expect(refused).toMatchObject({ admitted: false, denied: 1 });
    // the key's counter holds the first request only: 9 more fit
    const alone = await Promise.all(Array.from({ length: 12 }, () => b.store.acquire([key])));
    expect(alone.filter((r) => r.admitted)).toHaveLength(9);
  });
});
