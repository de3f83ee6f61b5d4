import { describe, expect, it } from 'vitest';
import { admit, type CounterItem, view, waitMs } from './counters.ts';
import { openAiDuration, retryAfterSeconds } from './headers.ts';
import { MemoryLimitStore } from './memory-store.ts';

const clock = {
  t: 1_000_000,
  now() {
    return this.t;
  },
};
const rate = (key: string, limit: number, period = 60_000, cost = 1, queue = 0): CounterItem => ({
  kind: 'rate',
  key,
  limit,
  period,
  cost,
  queue,
});

describe('GCRA in the memory store', () => {
  it('admits a full bucket at once, then one unit per period/limit', () => {
    const s = new MemoryLimitStore({ maxEntries: 100, clock });
    const r = rate('a', 4);
    expect([1, 2, 3, 4, 5].map(() => s.acquire([r]).admitted)).toEqual([true, true, true, true, false]);
    clock.t += 14_999;
    expect(s.acquire([r]).admitted).toBe(false);
    clock.t += 1;
    expect(s.acquire([r]).admitted).toBe(true);
  });

  it('a weighted cost fits only when the whole of it does', () => {
    const s = new MemoryLimitStore({ maxEntries: 100, clock });
    expect(s.acquire([rate('t', 100, 60_000, 70)]).admitted).toBe(true);
    expect(s.acquire([rate('t', 100, 60_000, 40)]).admitted).toBe(false);
    expect(s.acquire([rate('t', 100, 60_000, 30)]).admitted).toBe(true);
    // settling to less gives the difference back
    s.adjust([rate('t', 100)], [-50]);
    expect(s.acquire([rate('t', 100, 60_000, 50)]).admitted).toBe(true);
  });

  it('stays within maxEntries, dropping full buckets first', () => {
    const s = new MemoryLimitStore({ maxEntries: 10, clock });
    for (let i = 0; i < 100; i++) s.acquire([rate(`k${i}`, 1, 1000)]);
    expect(s.size).toBeLessThanOrEqual(10);
    clock.t += 2000;
    s.acquire([rate('late', 1)]);
    expect(s.size).toBeLessThanOrEqual(10);
  });
});

describe('GCRA with a queue', () => {
  // 10 units a second (T = 100 ms), a queue of 500 ms; state is the TAT relative to now = 0.
  const now = 0;
  const item = (cost: number, queue = 500) => rate('q', 10, 1000, cost, queue);
  it.each([
    // [what, state before, cost, queue, admitted, wait ms]
    ['an empty bucket admits a full burst without waiting', undefined, 10, 500, true, 0],
    ['a full bucket, no queue: refused', 1000, 1, 0, false, 0],
    ['a full bucket: the next unit waits its 100 ms', 1000, 1, 500, true, 100],
    ['five units past full wait the whole queue', 1000, 5, 500, true, 500],
    ['six units past full do not fit the queue', 1000, 6, 500, false, 0],
    ['a request larger than the limit never fits, whatever the queue', undefined, 11, 500, false, 0],
    ['a bucket already queued into: the wait adds up', 1300, 2, 500, true, 500],
  ] as const)('%s', (_what, state, cost, queue, admitted, wait) => {
    const it0 = item(cost, queue);
    const next = admit(it0, state, now);
    expect(next !== undefined).toBe(admitted);
    expect(waitMs(it0, next, now)).toBe(wait);
  });

  it('a queued admission leaves nothing remaining, and a refusal says when the request would fit without waiting', () => {
    const it0 = item(3);
    const next = admit(it0, 1000, now)!;
    expect(view(it0, next, true, now)).toMatchObject({ remaining: 0, retryAfterMs: 0 });
    const big = item(6);
    expect(view(big, 1000, false, now).retryAfterMs).toBe(600);
  });

  it('in the memory store, queued requests are paced one turn apart', () => {
    const s = new MemoryLimitStore({ maxEntries: 100, clock });
    const it0 = rate('paced', 2, 1000, 1, 1000);
    const waits = [1, 2, 3, 4, 5].map(() => {
      const r = s.acquire([it0]);
      return r.admitted ? waitMs(it0, r.states[0], r.now) : -1;
    });
    expect(waits).toEqual([0, 0, 500, 1000, -1]);
  });
});

describe('OpenAI header formats', () => {
  it('writes durations as OpenAI does', () => {
    expect([0, 59, 1000, 1500, 360_000, 3_612_000].map(openAiDuration)).toEqual([
      '0ms',
      '59ms',
      '1s',
      '1.5s',
      '6m0s',
      '1h0m12s',
    ]);
  });
  it('retry-after is whole seconds, at least 1', () => {
    expect([0, 1, 1000, 1001, 20_000].map(retryAfterSeconds)).toEqual(['1', '1', '1', '2', '20']);
  });
});

describe('limits config', () => {
  it('refuses an id used twice, and a downgrade to a routing alias', async () => {
    const { configSchema } = await import('../config/schema.ts');
    const r = configSchema.safeParse({
      routing: { aliases: { cheap: 'llama-3.1-8b' } },
      limits: {
        rate: [{ id: 'a', scope: 'key', limit: 1, per: 'minute' }],
        budgets: [{ id: 'a', scope: 'tenant', amount: 1, period: 'day', downgradeTo: 'cheap' }],
      },
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['limits.budgets.0.id', 'id "a" is used twice'],
      ['limits.budgets.0.downgradeTo', 'must name a model, not a routing alias'],
    ]);
  });
});
