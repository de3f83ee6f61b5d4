// The kill switch across replicas, as `lm-gate serve` runs it when `redis` is set: two
// connections on the main thread (commands, and a subscriber), the feed that keeps the shared
// kill set current, and the writer of what config reloads kill or lift. New kill sets go to
// onChange, which hands them to the gate threads (GateHost.setKills).
import { hostname } from 'node:os';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../pipeline/stage.ts';
import type { RedisConfig } from '../redis/config.ts';
import { RedisConnection } from '../redis/connection.ts';
import type { RedisMetrics } from '../redis/metrics.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KillSet } from './kill-set.ts';
import type { KillSwitchMetrics } from './metrics.ts';
import { RedisKillFeed } from './redis-feed.ts';
import { RedisKillStore } from './redis-store.ts';
import { configKillChanges } from './reload-changes.ts';
import { ReloadKillSync } from './reload-sync.ts';

export interface SharedKillSwitchOptions {
  redis: RedisConfig;
  killSwitch: Config['killSwitch'];
  clock: Clock;
  logger: Logger;
  metrics: KillSwitchMetrics;
  redisMetrics: RedisMetrics;
  onChange(set: KillSet): void;
}

export class SharedKillSwitch {
  readonly feed: RedisKillFeed;
  readonly sync: ReloadKillSync;
  private readonly commands: RedisConnection;
  private readonly subscriber: RedisConnection;
  private readonly redis: RedisConfig;

  constructor(o: SharedKillSwitchOptions) {
    this.redis = o.redis;
    const logger = o.logger.child({ component: 'kill-switch' });
    const conn = (role: string) => new RedisConnection({ config: o.redis, role, logger, metrics: o.redisMetrics });
    this.commands = conn('kill-switch');
    this.subscriber = conn('kill-switch-subscriber');
    const store = new RedisKillStore(this.commands);
    this.feed = new RedisKillFeed({
      commands: this.commands,
      subscriber: this.subscriber,
      store,
      resyncIntervalMs: o.killSwitch.resyncIntervalMs,
      maxEntries: o.killSwitch.maxEntries,
      clock: o.clock,
      logger,
      metrics: o.metrics,
      onChange: o.onChange,
    });
    this.sync = new ReloadKillSync({
      commands: this.commands,
      store,
      clock: o.clock,
      logger,
      metrics: o.metrics,
      by: hostname(),
      retryIntervalMs: o.killSwitch.resyncIntervalMs,
    });
    this.feed.start();
    this.sync.start();
  }

  /** Waits (bounded by the connect and command timeouts) for the first read of the kill set,
   * so a replica that starts while Redis is up serves with it from its first request. False:
   * not read yet; the replica serves with its config's kills and catches up when it can. */
  ready(): Promise<boolean> {
    return this.feed.waitForFirstSync(this.redis.connectTimeoutMs + 2 * this.redis.commandTimeoutMs);
  }

  /** A config reload on this replica: what it killed or lifted goes to every replica. */
  reloaded(prev: Config, next: Config): Promise<void> {
    const changes = configKillChanges(prev, next);
    return changes.length === 0 ? Promise.resolve() : this.sync.submit(changes);
  }

  close(): void {
    this.feed.stop();
    this.sync.stop();
    this.commands.close();
    this.subscriber.close();
  }
}
