// The harness starts a real redis-server on a free loopback port for the suites that share
// limits and budgets through Redis, and stops it.
import { Redis as RedisClient } from 'ioredis';
import { expect, it } from 'vitest';
import { startRedis } from '../harness/redis.ts';

it('starts a real, empty redis-server on a free port and stops it', async () => {
  const redis = await startRedis();
  const client = new RedisClient(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    expect(await client.dbsize()).toBe(0);
    // An atomic Lua script round trip, as the limit store will use.
    const n = await client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, 'k', 5);
    expect(n).toBe(5);
    expect((await client.info('server')).match(/redis_version:(\S+)/)?.[1]).toMatch(/^\d+\./);
  } finally {
    client.disconnect();
    expect(await redis.stop()).toBe(0);
  }
});
