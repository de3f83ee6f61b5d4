// Where counters live. Both stores apply a request's counters all or nothing: every counter is
// checked, and only when all admit is any of them changed. The memory store answers
// synchronously (no promise on the common path); the Redis store in one script call.
import type { CounterItem } from './counters.ts';

export interface AcquireResult {
  readonly admitted: boolean;
  /** The store's clock (Redis's TIME for the Redis store), ms. */
  readonly now: number;
  /** Each item's state after the call (unchanged when refused). */
  readonly states: readonly (number | undefined)[];
  /** The first item that did not fit, or -1. */
  readonly denied: number;
}

export interface AdjustResult {
  readonly now: number;
  /** Each item's state before and after. */
  readonly before: readonly (number | undefined)[];
  readonly after: readonly (number | undefined)[];
}

export interface LimitStore {
  acquire(items: readonly CounterItem[]): AcquireResult | Promise<AcquireResult>;
  /** Adds deltas[i] to items[i] unconditionally (settling, refunds). */
  adjust(items: readonly CounterItem[], deltas: readonly number[]): AdjustResult | Promise<AdjustResult>;
}
