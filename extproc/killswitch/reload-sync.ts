// Writes what a config reload killed or lifted (reload-changes.ts) to Redis, so every other
// replica applies it within a second. A write that fails (Redis unreachable) is kept and retried
// when the connection is back and at every resync tick, the latest change per id winning; the
// set of pending writes is bounded by the ids the config names.
import type { Clock } from '../pipeline/stage.ts';
import type { RedisConnection } from '../redis/connection.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KillSwitchMetrics } from './metrics.ts';
import type { RedisKillStore } from './redis-store.ts';
import type { KillChange } from './reload-changes.ts';

export interface ReloadKillSyncOptions {
  commands: RedisConnection;
  store: RedisKillStore;
  clock: Clock;
  logger: Logger;
  metrics: KillSwitchMetrics;
  /** This replica, for the entries' `by` (the host name). */
  by: string;
  retryIntervalMs: number;
}

export class ReloadKillSync {
  private readonly o: ReloadKillSyncOptions;
  private readonly pending = new Map<string, KillChange>();
  private flushing: Promise<void> | undefined;
  private again = false;
  private failing = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: ReloadKillSyncOptions) {
    this.o = opts;
  }

  start(): void {
    this.o.commands.onReady(() => void this.flush());
    this.timer = setInterval(() => {
      if (this.pending.size > 0) void this.flush();
    }, this.o.retryIntervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  submit(changes: readonly KillChange[]): Promise<void> {
    for (const c of changes) this.pending.set(`${c.kind}\0${c.id}`, c);
    this.o.metrics.pendingWrites.set(this.pending.size);
    return this.flush();
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Writes what is pending; concurrent calls share one pass and ask for one more after it. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = this.writeAll().finally(() => {
      this.flushing = undefined;
      if (this.again) {
        this.again = false;
        void this.flush();
      }
    });
    return this.flushing;
  }

  private async writeAll(): Promise<void> {
    const { commands, store, clock, logger, metrics, by } = this.o;
    if (this.pending.size === 0 || !commands.ready) return;
    for (const [k, c] of [...this.pending]) {
      try {
        if (c.op === 'kill')
          await store.kill(c.kind, c.id, { at: clock.now(), source: 'config', reason: 'config reload', by });
        else await store.lift(c.kind, c.id, 'source:config');
        // A newer change for the same id may have come in during the write: keep that one.
        if (this.pending.get(k) === c) this.pending.delete(k);
        logger.info({ op: c.op, kind: c.kind, id: c.id }, 'kill switch: config reload propagated through Redis');
      } catch (err) {
        if (!this.failing)
          logger.warn(
            { err: (err as Error).message, pending: this.pending.size },
            'kill switch: cannot write config reload changes to Redis; other replicas apply them when their own config reloads, and this replica retries',
          );
        this.failing = true;
        break;
      }
    }
    if (this.pending.size === 0) this.failing = false;
    metrics.pendingWrites.set(this.pending.size);
  }
}
