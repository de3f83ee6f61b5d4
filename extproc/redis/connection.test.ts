import { describe, expect, it } from 'vitest';
import { reconnectDelayMs, redisTarget } from './connection.ts';

describe('redisTarget', () => {
  it('names host and port only: a URL may carry a password, which must never reach a log', () => {
    expect(redisTarget({ url: 'redis://:s3cret@redis.svc:6380/2' })).toBe('redis.svc:6380');
    expect(redisTarget({ url: 'rediss://user:s3cret@redis.svc/0' })).toBe('redis.svc:6379');
    expect(redisTarget({ url: 'redis://user:s3cret@[bad' })).toBe('(unparseable url)');
  });
  it('names the sentinels master and the first cluster node, never a password', () => {
    expect(redisTarget({ sentinel: { name: 'lm', sentinels: ['s0:26379', 's1:26379'] } })).toBe(
      'sentinel lm via s0:26379',
    );
    expect(redisTarget({ cluster: { nodes: ['r0:6379', 'r1:6379'] } })).toBe('cluster via r0:6379');
  });
});

describe('reconnectDelayMs', () => {
  it('backs off from 100 ms, doubling, to at most 5 s, with ±20 % jitter', () => {
    const mid = (n: number) => reconnectDelayMs(n, () => 0.5);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map(mid)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    expect(reconnectDelayMs(1, () => 0)).toBe(80);
    expect(reconnectDelayMs(50, () => 1)).toBe(6000);
  });
});
