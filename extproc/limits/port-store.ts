// The memory store shared by a gate's workers (server.workers > 1): it lives on the main thread,
// and each worker reaches it through a MessagePort, so a limit stays exact across workers as if
// one thread decided. One message each way per admission and per settlement (tens of
// microseconds); the main thread answers at once (the store is synchronous).
import type { MessagePort } from 'node:worker_threads';
import type { CounterItem } from './counters.ts';
import type { MemoryLimitStore } from './memory-store.ts';
import type { AcquireResult, AdjustResult, LimitStore } from './store.ts';

type Question =
  | { op: 'acquire'; items: readonly CounterItem[] }
  | { op: 'adjust'; items: readonly CounterItem[]; deltas: readonly number[] };
type Ask = Question & { id: number };
type Answer = { id: number; result: AcquireResult | AdjustResult };

/** Main thread: answer one worker's port from the one store. */
export function serveLimitStore(port: MessagePort, store: MemoryLimitStore): void {
  port.on('message', (m: Ask) => {
    const result = m.op === 'acquire' ? store.acquire(m.items) : store.adjust(m.items, m.deltas);
    port.postMessage({ id: m.id, result } satisfies Answer);
  });
  // The worker's requests keep nothing alive: a pool shutting down is not held by the port.
  port.unref();
}

/** Worker: the main thread's store, over the port. */
export class PortLimitStore implements LimitStore {
  private readonly port: MessagePort;
  private readonly pending = new Map<number, (r: AcquireResult | AdjustResult) => void>();
  private seq = 0;

  constructor(port: MessagePort) {
    this.port = port;
    port.on('message', (m: Answer) => {
      const done = this.pending.get(m.id);
      this.pending.delete(m.id);
      done?.(m.result);
    });
    port.unref();
  }

  private ask<T extends AcquireResult | AdjustResult>(m: Question): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve) => {
      this.pending.set(id, resolve as (r: AcquireResult | AdjustResult) => void);
      this.port.postMessage({ ...m, id } satisfies Ask);
    });
  }

  acquire(items: readonly CounterItem[]): Promise<AcquireResult> {
    return this.ask({ op: 'acquire', items });
  }

  adjust(items: readonly CounterItem[], deltas: readonly number[]): Promise<AdjustResult> {
    return this.ask({ op: 'adjust', items, deltas });
  }

  close(): void {
    this.port.close();
  }
}
