// Redis connection metrics, registered on the registry of the thread that opens the connections.
import { Gauge, type Registry } from 'prom-client';

export class RedisMetrics {
  readonly connected: Gauge<'role'>;

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
