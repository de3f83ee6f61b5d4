// The workers' view of the main thread's memory store, over a real MessageChannel: answers come
// back to the right caller, and many callers in flight share one exact counter.
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { CounterItem } from './counters.ts';
import { MemoryLimitStore } from './memory-store.ts';
import { PortLimitStore, serveLimitStore } from './port-store.ts';

describe('PortLimitStore', () => {
  it('two ports on one store admit exactly the limit between them', async () => {
    const store = new MemoryLimitStore({ maxEntries: 100, clock: { now: () => 1_000_000 } });
    const a = new MessageChannel();
    const b = new MessageChannel();
    serveLimitStore(a.port1, store);
    serveLimitStore(b.port1, store);
    const workers = [new PortLimitStore(a.port2), new PortLimitStore(b.port2)];
    const item: CounterItem = { kind: 'rate', key: 'k', limit: 7, period: 60_000, cost: 1, queue: 0 };
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => workers[i % 2]!.acquire([item])));
    expect(results.filter((r) => r.admitted)).toHaveLength(7);
    const settled = await workers[1]!.adjust([item], [-2]);
    expect(settled.after[0]! - settled.before[0]!).toBeCloseTo(-2 * (60_000 / 7));
    for (const w of workers) w.close();
    a.port1.close();
    b.port1.close();
  });
});
