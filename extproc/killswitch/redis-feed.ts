// Follows the kill set in Redis for this replica: SUBSCRIBE for each change as it is made (within
// milliseconds), and a full read every killSwitch.resyncIntervalMs, at every (re)connection and
// whenever a message was missed, so what pub/sub lost is healed. replica-view.ts orders the two.
//
// When Redis is unreachable the last known set keeps applying, never emptied; the view is marked
// stale (a gauge and one log line) and readiness is not touched: a Redis outage must not take
// the gateway down with it, and kills made during the outage (or while this replica was cut
// off) arrive at the first resync once it can reach Redis again.
import type { Clock } from '../pipeline/stage.ts';
import type { RedisConnection } from '../redis/connection.ts';
import type { Logger } from '../telemetry/logger.ts';
import { entryLive, type KillSet } from './kill-set.ts';
import type { KillSwitchMetrics } from './metrics.ts';
import { parseMessage, type RedisKillStore, TooManyEntries } from './redis-store.ts';
import { ReplicaView } from './replica-view.ts';

export interface RedisKillFeedOptions {
  commands: RedisConnection;
  subscriber: RedisConnection;
  store: RedisKillStore;
  resyncIntervalMs: number;
  maxEntries: number;
  clock: Clock;
  logger: Logger;
  metrics: KillSwitchMetrics;
  /** Each new view, to hand to the gate threads. */
  onChange(set: KillSet): void;
}

export class RedisKillFeed {
  private readonly o: RedisKillFeedOptions;
  private readonly view: ReplicaView;
  private subscribed = false;
  private syncOk = false;
  private everFresh = false;
  private staleSince: number;
  private resyncing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  /** The last problem logged, so each is logged once, not once per resync. */
  private problem: string | undefined;
  private synced!: () => void;
  private readonly firstSync = new Promise<void>((r) => {
    this.synced = r;
  });

  constructor(opts: RedisKillFeedOptions) {
    this.o = opts;
    this.view = new ReplicaView({ clock: opts.clock, maxEntries: opts.maxEntries });
    this.staleSince = opts.clock.now();
  }

  get current(): KillSet {
    return this.view.current;
  }

  get stale(): boolean {
    return !(this.subscribed && this.syncOk);
  }

  start(): void {
    const { commands, subscriber, store } = this.o;
    this.updateStale();
    subscriber.client.on('message', (channel: string, raw: string) => {
      if (channel === store.channel) this.onMessage(raw);
    });
    subscriber.onReady(() => void this.subscribe());
    subscriber.onDown(() => {
      this.subscribed = false;
      this.updateStale();
    });
    commands.onReady(() => void this.resync());
    commands.onDown(() => {
      this.syncOk = false;
      this.updateStale();
    });
    this.timer = setInterval(() => void this.resync(), this.o.resyncIntervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Resolves true once the set has been read in full while subscribed (so nothing announced
   * since can be missed), false if not within timeoutMs. */
  waitForFirstSync(timeoutMs: number): Promise<boolean> {
    return Promise.race([
      this.firstSync.then(() => true),
      new Promise<boolean>((r) => setTimeout(r, timeoutMs, false).unref()),
    ]);
  }

  private async subscribe(): Promise<void> {
    try {
      await this.o.subscriber.client.subscribe(this.o.store.channel);
    } catch (err) {
      this.report('warn', 'subscribe', `cannot subscribe to the kill switch channel: ${(err as Error).message}`);
      return;
    }
    this.subscribed = true;
    // What was announced while this replica was not subscribed is read now.
    await this.resync();
  }

  private onMessage(raw: string): void {
    const m = parseMessage(raw);
    if (m === undefined) {
      this.report('warn', 'unreadable', 'unreadable message on the kill switch channel; resyncing');
      void this.resync();
      return;
    }
    const r = this.view.applyMessage(m);
    if (r.changed) this.emit();
    // Over maxEntries: the resync refuses the set and says so, once.
    if (r.resync || r.overflow) void this.resync();
  }

  /** A full read now; concurrent calls share one read and ask for one more after it. */
  resync(): Promise<void> {
    if (this.resyncing) {
      this.again = true;
      return this.resyncing;
    }
    this.resyncing = this.readAll().finally(() => {
      this.resyncing = undefined;
      if (this.again) {
        this.again = false;
        void this.resync();
      }
    });
    return this.resyncing;
  }

  private async readAll(): Promise<void> {
    const { commands, store, maxEntries, clock } = this.o;
    if (!commands.ready) {
      this.syncOk = false;
      this.updateStale();
      return;
    }
    let snapshot: Awaited<ReturnType<RedisKillStore['snapshot']>>;
    try {
      snapshot = await store.snapshot(maxEntries);
    } catch (err) {
      this.syncOk = false;
      if (err instanceof TooManyEntries)
        this.report('error', 'too-many', `${err.message} (${maxEntries}); the last set loaded keeps applying`);
      else if (commands.ready) this.report('warn', 'resync', `kill switch resync failed: ${(err as Error).message}`);
      this.updateStale();
      return;
    }
    const r = this.view.applySnapshot(snapshot);
    if (r.restore.length > 0) {
      this.o.logger.warn(
        { entries: r.restore.length },
        'the kill set in Redis lost entries this replica holds (Redis restarted empty or was flushed); writing them back',
      );
      let failed = false;
      for (const [kind, id, entry] of r.restore) {
        await store.kill(kind, id, entry, { nx: true }).catch((err: unknown) => {
          failed = true;
          this.report('warn', 'restore', `kill switch restore failed: ${(err as Error).message}`);
        });
      }
      // Read again at once to take the restored set; after a failure, at the next tick.
      if (!failed) this.again = true;
      return;
    }
    this.syncOk = true;
    this.report(undefined, undefined, '');
    this.o.metrics.redisLastSync.set(clock.now() / 1000);
    if (r.changed) this.emit();
    this.updateStale();
    this.pruneExpired();
  }

  /** Entries past their expiry no longer apply anywhere; deleting them (only if still the
   * expired entry: the script checks) keeps the set small. Any replica may; one succeeds. */
  private pruneExpired(): void {
    const { store, clock } = this.o;
    const now = clock.now();
    for (const [kind, id, entry] of this.view.current.entries()) {
      if (entryLive(entry, clock)) continue;
      store.lift(kind, id, `expired:${now}`).catch(() => {});
    }
  }

  private emit(): void {
    this.o.metrics.setEntries('redis', this.view.current);
    this.o.onChange(this.view.current);
  }

  private updateStale(): void {
    const { metrics, clock, logger } = this.o;
    if (!this.stale) {
      // Read and subscribed: nothing announced from here on can be missed.
      this.synced();
      if (this.staleSince !== 0 && this.everFresh)
        logger.info({ staleMs: clock.now() - this.staleSince }, 'kill switch: Redis view current again');
      this.everFresh = true;
      this.staleSince = 0;
      metrics.redisStale.set(0);
      metrics.redisStaleSince.set(0);
      return;
    }
    if (this.staleSince === 0) {
      this.staleSince = clock.now();
      logger.warn(
        { entries: [...this.view.current.entries()].length },
        'kill switch: Redis view stale; the last known kill set keeps applying',
      );
    }
    metrics.redisStale.set(1);
    metrics.redisStaleSince.set(this.staleSince / 1000);
  }

  /** Logs a problem once, however often it recurs, and once that it went away. */
  private report(level: 'warn' | 'error' | undefined, problem: string | undefined, message: string): void {
    if (problem === this.problem) return;
    if (level === undefined) {
      if (this.problem !== undefined) this.o.logger.info('kill switch resync recovered');
    } else {
      this.o.logger[level](message);
    }
    this.problem = problem;
  }
}
