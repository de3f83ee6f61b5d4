import { describe, expect, it } from 'vitest';
import type { CounterItem } from './counters.ts';
import { openAiDuration, retryAfterSeconds } from './headers.ts';
import { MemoryLimitStore } from './memory-store.ts';

const clock = {
  t: 1_000_000,
  now() {
    return this.t;
  },
};
const rate = (key: string, limit: number, period = 60_000, cost = 1): CounterItem => ({
  kind: 'rate',
  key,
  limit,
  period,
  cost,
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
