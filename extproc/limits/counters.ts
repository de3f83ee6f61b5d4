// The arithmetic of the two kinds of counter, shared by the memory store and mirrored line for
// line by the Redis store's Lua script (redis-store.ts), so both decide alike.
//
// rate: GCRA (generic cell rate algorithm). The state is one number, the theoretical arrival
// time (TAT, ms): the time at which the bucket would be full again. A limit of L per period P
// spends T = P/L ms of TAT per unit; a request of cost n is admitted when
// max(TAT, now) + n·T - now <= P. So a full bucket admits L at once, and afterwards one unit
// every T ms: in any window of length t at most L + floor(t/T) units pass. A state in the past
// is the same as no state, so keys expire at their TAT.
//
// A rate limit with a queue (queueMs, Q) also admits a request whose turn comes within Q ms:
// max(TAT, now) + n·T - now <= P + Q. Its units are reserved at once (the TAT moves as for any
// admission) and the caller waits TAT' - now - P ms before it goes on: the pacing of a retry at
// the right moment, without the retry. A request that could never fit (n·T > P) is refused
// however long the queue.
//
// budget: a sum spent in the current calendar period. A request is admitted while something is
// left (spent < amount) and its whole reservation is added: with every reservation at least the
// real cost, spending can pass the amount by at most the largest single reservation.

export type CounterKind = 'rate' | 'budget';

/** One counter a request is checked against. */
export interface CounterItem {
  readonly kind: CounterKind;
  /** Store key (Redis key name under keyPrefix, memory map key). */
  readonly key: string;
  /** rate: units per period; budget: the amount per period. */
  readonly limit: number;
  /** rate: the period in ms; budget: when the period ends (epoch ms), the key's expiry. */
  readonly period: number;
  /** Units this request takes (1 request, a token reservation, body bytes, a cost reservation). */
  readonly cost: number;
  /** rate: ms a request may wait for its turn (the limit's queueMs); budget: 0. Always set, so
   * every item has one shape. */
  readonly queue: number;
}

/** The state after admitting `cost` on `state`, or undefined when it does not fit. */
export function admit(item: CounterItem, state: number | undefined, now: number): number | undefined {
  if (item.kind === 'rate') {
    const t = item.period / item.limit;
    const tat = state === undefined || state < now ? now : state;
    const next = tat + item.cost * t;
    if (next - now <= item.period) return next;
    return item.queue > 0 && next - now <= item.period + item.queue && item.cost * t <= item.period ? next : undefined;
  }
  const spent = state ?? 0;
  return spent < item.limit ? spent + item.cost : undefined;
}

/** The state after adding `delta` (negative: a refund) unconditionally; undefined: drop the
 * key (a rate bucket full again, a budget back to nothing). */
export function adjust(item: CounterItem, state: number | undefined, delta: number, now: number): number | undefined {
  if (item.kind === 'rate') {
    const t = item.period / item.limit;
    const tat = state === undefined || state < now ? now : state;
    const next = tat + delta * t;
    return next <= now ? undefined : next;
  }
  const next = (state ?? 0) + delta;
  return next <= 0 ? undefined : next;
}

/** ms an admitted request waits for its turn on a rate counter now at `state` (0: none). */
export function waitMs(item: CounterItem, state: number | undefined, now: number): number {
  if (item.kind !== 'rate' || state === undefined) return 0;
  const w = state - now - item.period;
  return w > 0 ? w : 0;
}

/** When a key holding `state` may be dropped (epoch ms). */
export function expiresAt(item: CounterItem, state: number): number {
  return item.kind === 'rate' ? Math.ceil(state) : item.period;
}

/** What the headers and the audit say about one counter. */
export interface CounterView {
  limit: number;
  /** Units left now (after this request when it was admitted). */
  remaining: number;
  /** ms until the counter is back to its full limit (rate), or the period ends (budget). */
  resetMs: number;
  /** ms until a request of this cost could pass (0 when it was admitted). */
  retryAfterMs: number;
}

export function view(item: CounterItem, state: number | undefined, admitted: boolean, now: number): CounterView {
  if (item.kind === 'rate') {
    const t = item.period / item.limit;
    const tat = state === undefined || state < now ? now : state;
    const used = tat - now;
    const remaining = Math.max(0, Math.floor((item.period - used) / t + 1e-9));
    const retryAfterMs = admitted
      ? 0
      : item.cost * t > item.period
        ? item.period // never fits; say a period, the honest lower bound for a retry
        : Math.max(0, tat + item.cost * t - item.period - now);
    return { limit: item.limit, remaining, resetMs: Math.max(0, used), retryAfterMs };
  }
  const spent = state ?? 0;
  const left = Math.max(0, item.limit - spent);
  const resetMs = Math.max(0, item.period - now);
  return { limit: item.limit, remaining: left, resetMs, retryAfterMs: admitted ? 0 : resetMs };
}
