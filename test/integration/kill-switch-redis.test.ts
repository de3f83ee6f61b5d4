// The kill switch across replicas against a real redis-server: two replicas (each what
// `lm-gate serve` runs on its main thread: SharedKillSwitch, its two connections, feed and reload
// writer) and an operator writing as `lm-gate kill` does. Pub/sub carries a kill to every replica
// within a second; the resync heals what a replica missed (cut off when the kill was announced,
// or a message that never came); Redis going away or coming back empty never empties a replica's
// view.
import { Writable } from 'node:stream';
import { Redis as RedisClient } from 'ioredis';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../extproc/config/load.ts';
import type { KillKind, KillSet } from '../../extproc/killswitch/kill-set.ts';
import { KillSwitchMetrics } from '../../extproc/killswitch/metrics.ts';
import { RedisKillStore } from '../../extproc/killswitch/redis-store.ts';
import { SharedKillSwitch } from '../../extproc/killswitch/shared.ts';
import { systemClock } from '../../extproc/pipeline/stage.ts';
import { RedisMetrics } from '../../extproc/redis/metrics.ts';
import { createLogger } from '../../extproc/telemetry/logger.ts';
import { type Redis, startRedis } from '../harness/redis.ts';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Replica {
  ks: SharedKillSwitch;
  /** Every view the replica handed its gate threads, in order. */
  views: KillSet[];
  logs: Record<string, unknown>[];
  has(kind: KillKind, id: string): boolean;
  metric(name: string): Promise<number>;
}

function replica(url: string, prefix: string, opts: { resyncIntervalMs?: number; maxEntries?: number } = {}): Replica {
  const registry = new Registry();
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const views: KillSet[] = [];
  const ks = new SharedKillSwitch({
    redis: { url, keyPrefix: prefix, connectTimeoutMs: 500, commandTimeoutMs: 500 },
    killSwitch: {
      keys: [],
      users: [],
      teams: [],
      tenants: [],
      models: [],
      resyncIntervalMs: opts.resyncIntervalMs ?? 60_000,
      maxEntries: opts.maxEntries ?? 10_000,
    },
    clock: systemClock,
    logger: createLogger('info', sink),
    metrics: new KillSwitchMetrics(registry),
    redisMetrics: new RedisMetrics(registry),
    onChange: (set) => views.push(set),
  });
  cleanups.push(() => ks.close());
  return {
    ks,
    views,
    logs,
    has: (kind, id) => ks.feed.current.get(kind, id) !== undefined,
    metric: async (name) => {
      const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
      return Number(m?.values[0]?.value);
    },
  };
}

/** What `lm-gate kill` does: its own connection, the same store. */
async function operator(url: string, prefix: string): Promise<{ store: RedisKillStore; raw: RedisClient }> {
  const raw = new RedisClient(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  raw.on('error', () => {});
  await raw.connect();
  cleanups.push(() => raw.disconnect());
  return { store: new RedisKillStore({ client: raw, key: (n) => prefix + n }), raw };
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const start = performance.now();
  while (!(await probe())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - start;
}

async function redis(): Promise<Redis> {
  const r = await startRedis();
  cleanups.push(() => r.stop());
  return r;
}

const cli = (reason?: string) => ({ at: Date.now(), source: 'cli' as const, ...(reason ? { reason } : {}) });

describe('kill switch through Redis', () => {
  it('a kill reaches both replicas within a second by pub/sub (no resync in the test window), and so does a lift', async () => {
    const r = await redis();
    const a = replica(r.url, 't1:');
    const b = replica(r.url, 't1:');
    expect(await a.ks.ready()).toBe(true);
    expect(await b.ks.ready()).toBe(true);
    const { store } = await operator(r.url, 't1:');

    await store.kill('key', 'leaked', cli('in a gist'));
    const killMs = await until('both replicas refuse the key', () => a.has('key', 'leaked') && b.has('key', 'leaked'));
    expect(killMs).toBeLessThan(1000);
    expect(b.ks.feed.current.get('key', 'leaked')?.reason).toBe('in a gist');

    expect(await store.lift('key', 'leaked')).toBeGreaterThan(0);
    const liftMs = await until(
      'both replicas admit it again',
      () => !a.has('key', 'leaked') && !b.has('key', 'leaked'),
    );
    expect(liftMs).toBeLessThan(1000);
    console.log(`kill seen by both replicas after ${killMs.toFixed(1)} ms, lift after ${liftMs.toFixed(1)} ms`);
    expect(await a.metric('lmgate_kill_switch_redis_stale')).toBe(0);
  });

  it('a replica cut off when a kill is announced gets it as soon as it reconnects, and says it was stale meanwhile', async () => {
    const r = await redis();
    const proxy: TcpProxy = await startTcpProxy(r.port);
    cleanups.push(() => proxy.close());
    const a = replica(r.url, 't2:');
    // The periodic resync is a minute away: what heals B here is the read at reconnection.
    const b = replica(proxy.url, 't2:');
    await Promise.all([a.ks.ready(), b.ks.ready()]);
    const { store } = await operator(r.url, 't2:');
    await store.kill('tenant', 'before', cli());
    await until('B has the first kill', () => b.has('tenant', 'before'));

    await proxy.cut();
    await until('B sees that it is cut off', async () => (await b.metric('lmgate_kill_switch_redis_stale')) === 1);
    const since = await b.metric('lmgate_kill_switch_redis_stale_since_seconds');
    expect(Math.abs(since - Date.now() / 1000)).toBeLessThan(5);
    await store.kill('user', 'mallory', cli());
    await until('A has the kill', () => a.has('user', 'mallory'));
    await new Promise((res) => setTimeout(res, 300));
    expect(b.has('user', 'mallory')).toBe(false);
    // What it knew keeps applying.
    expect(b.has('tenant', 'before')).toBe(true);

    await proxy.restore();
    await until('B has the kill it missed', () => b.has('user', 'mallory'), 10_000);
    await until('B is current again', async () => (await b.metric('lmgate_kill_switch_redis_stale')) === 0);
    expect(await b.metric('lmgate_kill_switch_redis_stale_since_seconds')).toBe(0);
    expect(b.views.every((v) => v.get('tenant', 'before') !== undefined)).toBe(true);
  });

  it('a kill whose message never came is healed by the periodic resync', async () => {
    const r = await redis();
    const a = replica(r.url, 't3:', { resyncIntervalMs: 300 });
    await a.ks.ready();
    const { raw } = await operator(r.url, 't3:');
    // Written as the script would, but never published: a lost message.
    await raw.hset('t3:{kill}:model', 'llama-3.1-70b', JSON.stringify(cli('leaks training data')));
    await raw.incr('t3:{kill}:version');
    const ms = await until('the resync brings the kill', () => a.has('model', 'llama-3.1-70b'), 3000);
    expect(ms).toBeLessThan(1000);
  });

  it('Redis stopped: the last known set keeps applying; reload changes wait; Redis back empty gets them all back', async () => {
    const r = await redis();
    const a = replica(r.url, 't4:', { resyncIntervalMs: 200 });
    const b = replica(r.url, 't4:', { resyncIntervalMs: 200 });
    await Promise.all([a.ks.ready(), b.ks.ready()]);
    const op1 = await operator(r.url, 't4:');
    await op1.store.kill('team', 'red', cli('incident 42'));
    await until('both have the kill', () => a.has('team', 'red') && b.has('team', 'red'));

    await r.stop();
    await until('both say stale', async () => (await a.metric('lmgate_kill_switch_redis_stale')) === 1);
    await until('B says stale', async () => (await b.metric('lmgate_kill_switch_redis_stale')) === 1);
    expect(await a.metric('lmgate_redis_connected')).toBe(0);
    await new Promise((res) => setTimeout(res, 500)); // a few failed resyncs
    expect(a.has('team', 'red') && b.has('team', 'red')).toBe(true);

    // A's config reload disables a key meanwhile: the write waits for Redis.
    const prev = parseConfig(
      JSON.stringify({ identity: { apiKeys: [{ id: 'ci', sha256: 'c'.repeat(64), tenant: 't' }] } }),
      'x',
      {},
    );
    const next = parseConfig(
      JSON.stringify({ identity: { apiKeys: [{ id: 'ci', sha256: 'c'.repeat(64), tenant: 't', disabled: true }] } }),
      'x',
      {},
    );
    await a.ks.reloaded(prev, next);
    expect(a.ks.sync.pendingCount).toBe(1);
    expect(await a.metric('lmgate_kill_switch_pending_writes')).toBe(1);

    // Back, and empty: the replicas write back what they held, the reload's kill goes out.
    await r.restart();
    const op2 = await operator(r.url, 't4:');
    await until(
      'Redis has the team kill again',

      async () => (await op2.raw.hexists('t4:{kill}:team', 'red')) === 1,
      10_000,
    );
    await until('B has the reload kill', () => b.has('key', 'ci'), 10_000);
    await until('both current', async () => (await b.metric('lmgate_kill_switch_redis_stale')) === 0);
    expect(a.ks.sync.pendingCount).toBe(0);
    const restored = JSON.parse((await op2.raw.hget('t4:{kill}:team', 'red'))!);
    expect(restored).toMatchObject({ source: 'cli', reason: 'incident 42' });
    // No view either replica handed its gate threads ever lacked the kill.
    expect([...a.views, ...b.views].every((v) => v.get('team', 'red') !== undefined)).toBe(true);
    // One line when Redis went away, one when it came back: not one per attempt.
    const lines = a.logs.map((l) => l.msg);
    expect(lines.filter((m) => m === 'redis unreachable; retrying with backoff')).toHaveLength(2);
    expect(
      lines.filter((m) => m === 'kill switch: Redis view stale; the last known kill set keeps applying'),
    ).toHaveLength(1);
    expect(JSON.stringify(a.logs)).not.toContain('redis://');
  });

  it("a config reload's kills and lifts reach the other replica; its lift leaves a kill made by hand alone", async () => {
    const r = await redis();
    const a = replica(r.url, 't5:');
    const b = replica(r.url, 't5:');
    await Promise.all([a.ks.ready(), b.ks.ready()]);
    const cfg = (keys: { id: string; disabled?: boolean }[], killSwitch = {}) =>
      parseConfig(
        JSON.stringify({
          identity: { apiKeys: keys.map((k, i) => ({ sha256: String(i).repeat(64), tenant: 't', ...k })) },
          killSwitch,
        }),
        'x',
        {},
      );
    const v1 = cfg([{ id: 'k1' }, { id: 'k2' }]);
    const v2 = cfg([{ id: 'k1', disabled: true }], { users: ['eve'] });
    await a.ks.reloaded(v1, v2);
    await until(
      'B refuses k1, k2 (removed) and eve',
      () => b.has('key', 'k1') && b.has('key', 'k2') && b.has('user', 'eve'),
    );
    expect(b.ks.feed.current.get('key', 'k1')).toMatchObject({ source: 'config', reason: 'config reload' });

    // k2 is killed by hand too; a reload that re-adds k2 and enables k1 lifts only what reloads wrote.
    const { store } = await operator(r.url, 't5:');
    await store.kill('key', 'k2', cli('rotating'));
    const v3 = cfg([{ id: 'k1' }, { id: 'k2' }]);
    await a.ks.reloaded(v2, v3);
    await until('B admits k1 and eve again', () => !b.has('key', 'k1') && !b.has('user', 'eve'));
    expect(b.has('key', 'k2')).toBe(true);
  });

  it('a kill set larger than killSwitch.maxEntries is refused whole and logged once; the last one loaded keeps applying', async () => {
    const r = await redis();
    const { store } = await operator(r.url, 't6:');
    await store.kill('user', 'u1', cli());
    const a = replica(r.url, 't6:', { resyncIntervalMs: 150, maxEntries: 2 });
    await a.ks.ready();
    expect(a.has('user', 'u1')).toBe(true);
    for (const id of ['u2', 'u3', 'u4']) await store.kill('user', id, cli());
    await until('the refusal is logged', () => a.logs.some((l) => String(l.msg).includes('maxEntries')));
    await new Promise((res) => setTimeout(res, 600));
    expect(a.logs.filter((l) => String(l.msg).includes('maxEntries'))).toHaveLength(1);
    expect(a.has('user', 'u1') && a.has('user', 'u2')).toBe(true);
    expect([...a.ks.feed.current.entries()]).toHaveLength(2);
  });

  it('an expired entry stops applying and is deleted from Redis by a replica', async () => {
    const r = await redis();
    const a = replica(r.url, 't7:', { resyncIntervalMs: 150 });
    await a.ks.ready();
    const { store, raw } = await operator(r.url, 't7:');
    await store.kill('model', 'm', { ...cli(), expiresAt: Date.now() + 300 });
    await until('the kill arrives', () => a.has('model', 'm'));
    await until('it is pruned from Redis', async () => (await raw.hexists('t7:{kill}:model', 'm')) === 0, 3000);
    await until('and from the view', () => !a.has('model', 'm'));
  });
});
