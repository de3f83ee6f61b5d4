// Counters in this thread's memory: exact for everything this thread decides. Bounded: at most
// maxEntries counters; when full, expired ones (full rate buckets, past budget periods) are
// dropped, and if that is not enough the oldest, down to 90 % so the sweep is not paid on every
// insert. Dropping a live counter forgets what it counted (a lenient error, logged by the count).
import type { Clock } from '../pipeline/stage.ts';
import { adjust, admit, type CounterItem, expiresAt } from './counters.ts';
import type { AcquireResult, AdjustResult, LimitStore } from './store.ts';

interface Entry {
  value: number;
  expires: number;
}

export class MemoryLimitStore implements LimitStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly clock: Clock;
  /** Live counters dropped because the store was full. */
  evicted = 0;

  constructor(opts: { maxEntries: number; clock: Clock }) {
    this.maxEntries = opts.maxEntries;
    this.clock = opts.clock;
  }

  get size(): number {
    return this.entries.size;
  }

  private read(key: string, now: number): number | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  private write(item: CounterItem, value: number | undefined): void {
    if (value === undefined) {
      this.entries.delete(item.key);
      return;
    }
    const e = this.entries.get(item.key);
    if (e !== undefined) {
      e.value = value;
      e.expires = expiresAt(item, value);
      return;
    }
    if (this.entries.size >= this.maxEntries) this.makeRoom();
    this.entries.set(item.key, { value, expires: expiresAt(item, value) });
  }

  private makeRoom(): void {
    const now = this.clock.now();
    for (const [k, e] of this.entries) if (e.expires <= now) this.entries.delete(k);
    const target = Math.floor(this.maxEntries * 0.9);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= target) break;
      this.entries.delete(k);
      this.evicted++;
    }
  }

  acquire(items: readonly CounterItem[]): AcquireResult {
    const now = this.clock.now();
    const states: (number | undefined)[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const before = this.read(item.key, now);
      const next = admit(item, before, now);
      if (next === undefined) {
        for (let j = 0; j < items.length; j++) states[j] = this.read(items[j]!.key, now);
        return { admitted: false, now, states, denied: i };
      }
      states[i] = next;
    }
    // Two items on one key (a level listed twice) would each have checked the old state; apply
    // in order so the second sees the first.
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const next = i === 0 ? states[0] : admit(item, this.read(item.key, now), now);
      if (next === undefined) {
        // Only reachable when one key repeats: undo what this call applied.
        for (let j = 0; j < i; j++)
          this.write(items[j]!, adjust(items[j]!, this.read(items[j]!.key, now), -items[j]!.cost, now));
        for (let j = 0; j < items.length; j++) states[j] = this.read(items[j]!.key, now);
        return { admitted: false, now, states, denied: i };
      }
      states[i] = next;
      this.write(item, next);
    }
    return { admitted: true, now, states, denied: -1 };
  }

  adjust(items: readonly CounterItem[], deltas: readonly number[]): AdjustResult {
    const now = this.clock.now();
    const before: (number | undefined)[] = [];
    const after: (number | undefined)[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const b = this.read(item.key, now);
      const a = deltas[i] === 0 ? b : adjust(item, b, deltas[i]!, now);
      if (a !== b) this.write(item, a);
      before.push(b);
      after.push(a);
    }
    return { now, before, after };
  }
}
