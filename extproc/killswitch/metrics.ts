// Kill switch metrics, on the registry of the thread that follows Redis (the main thread).
import { Gauge, type Registry } from 'prom-client';
import { KILL_KINDS, type KillSet } from './kill-set.ts';

export class KillSwitchMetrics {
  readonly entries: Gauge<'kind' | 'source'>;
  readonly redisStale: Gauge;
  readonly redisStaleSince: Gauge;
  readonly redisLastSync: Gauge;
  readonly pendingWrites: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.entries = new Gauge({
      name: 'lmgate_kill_switch_entries',
      help: "Kill switch entries by kind (key, user, team, tenant, model) and source: config (this replica's config, disabled keys included) or redis (the shared set as this replica last heard it, expired ones included until pruned).",
      labelNames: ['kind', 'source'],
      registers,
    });
    this.redisStale = new Gauge({
      name: 'lmgate_kill_switch_redis_stale',
      help: "1 while this replica's view of the kill set in Redis may be out of date (not subscribed, or the last resync failed): the last known set keeps applying, and kills made meanwhile arrive at the first resync after Redis is back.",
      registers,
    });
    this.redisStaleSince = new Gauge({
      name: 'lmgate_kill_switch_redis_stale_since_seconds',
      help: 'Unix time since which the Redis view has been stale; 0 while it is current.',
      registers,
    });
    this.redisLastSync = new Gauge({
      name: 'lmgate_kill_switch_redis_last_sync_seconds',
      help: 'Unix time of the last full read (resync) of the kill set in Redis; 0 before the first.',
      registers,
    });
    this.pendingWrites = new Gauge({
      name: 'lmgate_kill_switch_pending_writes',
      help: 'Kills and lifts from config reloads not yet written to Redis (Redis unreachable); retried until they are.',
      registers,
    });
  }

  setEntries(source: 'config' | 'redis', set: KillSet): void {
    for (const kind of KILL_KINDS) this.entries.labels(kind, source).set(set.size(kind));
  }
}
