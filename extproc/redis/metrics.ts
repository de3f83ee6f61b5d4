// Redis connection metrics, registered on the registry of the thread that opens the connections.
import { Gauge, type Registry } from 'prom-client';

const byRegistry = new WeakMap<Registry, RedisMetrics>();

export class RedisMetrics {
  readonly connected: Gauge<'role'>;

  /** The one instance per registry: the kill switch and limits may both open connections on
   * one thread, and a registry refuses a metric registered twice. */
  static for(registry: Registry): RedisMetrics {
    let m = byRegistry.get(registry);
    if (m === undefined) {
      m = new RedisMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  constructor(registry: Registry) {
    this.connected = new Gauge({
      name: 'lmgate_redis_connected',
      help: 'Whether the Redis connection of this role is up (1) or down and retrying (0).',
      labelNames: ['role'],
      // Summed over gate workers a 1 would read as "2 connected"; the least says whether any is down.
      aggregator: 'min',
      registers: [registry],
    });
  }
}
