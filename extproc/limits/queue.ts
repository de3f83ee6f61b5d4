// Rate limit queues (limits.rate[].queueMs). A request over a limit whose turn comes within the
// queue waits for it (its units are already reserved, counters.ts); one whose turn is further
// away waits the whole queue and is then refused, so a client that ignores 429 and retries at
// once is paced as well. Waiting is what makes a byte limit protect the others: while the
// answer is held, Envoy holds the body and reads no more of the upload than its buffer limit,
// where a quick 429 would let the client send the next body at once. Bounded per gate thread
// (limits.maxWaiting). No zod here: the serving process loads this.

/** How much of server.maxMessageDeadlineMs a queue may not use: the store call before the wait
 * and the answer after it must fit too (config/schema.ts checks queueMs against it). */
export const QUEUE_MARGIN_MS = 100;

/** Requests waiting in this gate thread's rate limit queues. */
export class Waiting {
  count = 0;
  /** A place in the queues, or false when `max` requests already wait. */
  enter(max: number): boolean {
    if (this.count >= max) return false;
    this.count++;
    return true;
  }
  leave(): void {
    this.count--;
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts (the request ended: nothing to hold it
 * for), with how long it waited. */
export function sleep(ms: number, signal: AbortSignal): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(0);
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve(Math.round(performance.now() - start));
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
