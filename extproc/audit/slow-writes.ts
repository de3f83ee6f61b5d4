// When the audit sink stops appending with a synchronous write(2). Into the page cache such a
// write takes microseconds; one that takes milliseconds has one of two causes:
// - the file is slow (a network filesystem, a disk under writeback throttling): it happens
//   again, and each time blocks the event loop, so appends should go through the thread pool;
// - the thread was preempted in the call on a busy host (seen about once in 48,000 requests
//   in a 64-worker closed loop on the 2-core bench machine): it says nothing about the file,
//   and thread-pool appends would cost ~40 µs of CPU each for nothing.
// A slow file repeats and a preemption is sporadic, so the switch takes two slow writes within
// a second, or one that stalled longer than a scheduler delay explains.

/** A synchronous write slower than this is slow. */
export const SLOW_WRITE_MS = 2;
/** Two slow writes this close together mean the file is slow. */
export const REPEAT_WITHIN_MS = 1000;
/** One write this slow means the file is slow, whatever came before. */
export const STALLED_WRITE_MS = 50;
/** How long appends go through the thread pool before a synchronous one is tried again. */
export const ASYNC_FOR_MS = 10_000;

export type WriteVerdict = 'fast' | 'slow' | 'switch';

export class SlowWriteGuard {
  private readonly slowMs: number;
  private lastSlowAtMs = Number.NEGATIVE_INFINITY;
  private asyncUntilMs = 0;

  /** `slowMs`: tests make every write slow (-1) or none (a large value). */
  constructor(slowMs: number = SLOW_WRITE_MS) {
    this.slowMs = slowMs;
  }

  /** Whether an append may be a synchronous write at `nowMs`. */
  syncAllowed(nowMs: number): boolean {
    return nowMs >= this.asyncUntilMs;
  }

  /** A synchronous write took `tookMs` and ended at `nowMs`: 'switch' when appends should go
   * through the thread pool for ASYNC_FOR_MS from now on. */
  observe(tookMs: number, nowMs: number): WriteVerdict {
    if (tookMs <= this.slowMs) return 'fast';
    const repeat = nowMs - this.lastSlowAtMs <= REPEAT_WITHIN_MS;
    this.lastSlowAtMs = nowMs;
    if (!repeat && tookMs <= Math.max(this.slowMs, STALLED_WRITE_MS)) return 'slow';
    this.asyncUntilMs = nowMs + ASYNC_FOR_MS;
    // Back to synchronous writes later, the next slow one is judged afresh.
    this.lastSlowAtMs = Number.NEGATIVE_INFINITY;
    return 'switch';
  }
}
