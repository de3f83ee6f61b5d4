// One Redis connection (ioredis), set up so that Redis being slow or gone never holds the gate:
// a bounded connect timeout, a bounded command timeout, no offline queue (a command sent while
// the connection is down fails at once instead of waiting in a queue that grows with traffic),
// no retry of commands cut by a disconnect, and reconnection forever with backoff. Its state is
// a gauge (lmgate_redis_connected{role}) and one log line per change of state, never one per
// failed attempt.
//
// Supported deployments: a standalone server (redis:// or rediss://, or anything that speaks like
// one: a proxy, a managed endpoint), a master behind Sentinel (ioredis asks the sentinels and
// follows failovers), and Redis Cluster (ioredis's Cluster client; every multi-key script keeps
// its keys in one hash slot: {kill}, {t:<tenant>}, ...).
//
// The kill switch opens two on the main thread (commands, and a subscriber: a connection in
// SUBSCRIBE mode can run nothing else). Limits and budgets (#10) are meant to open their own
// with a role of their own, wherever their requests are served.
import { createRequire } from 'node:module';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../telemetry/logger.ts';
import type { RedisConfig } from './config.ts';
import type { RedisMetrics } from './metrics.ts';

/** A standalone or Sentinel connection, or a Cluster: the commands the gate sends are the same. */
export type RedisClient = Redis | Cluster;

/** ioredis, loaded when the first client is made (at start or on a reload, never per request):
 * a gate with no Redis section does not hold its ~2 MiB of heap and code. */
const requireCjs = createRequire(import.meta.url);
let ioredis: typeof import('ioredis') | undefined;
function client(): typeof import('ioredis') {
  ioredis ??= requireCjs('ioredis') as typeof import('ioredis');
  return ioredis;
}

/** Whether `c` is a Cluster client (one script call per hash slot). */
export function isCluster(c: RedisClient): c is Cluster {
  return c instanceof client().Cluster;
}

/** Where the section points, for logs: host:port of a URL (which may carry a password), the
 * sentinels' master name, or the first cluster node. */
export function redisTarget(config: Pick<RedisConfig, 'url' | 'sentinel' | 'cluster'>): string {
  if (config.sentinel) return `sentinel ${config.sentinel.name} via ${config.sentinel.sentinels[0]}`;
  if (config.cluster) return `cluster via ${config.cluster.nodes[0]}`;
  return urlTarget(config.url ?? '');
}

function urlTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return '(unparseable url)';
  }
}

/** Reconnect delays: 100 ms doubling to 5 s, with jitter so replicas do not reconnect in step
 * after an outage. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(5000, 100 * 2 ** Math.min(Math.max(attempt - 1, 0), 6));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** The options every gate connection uses (see the top of this file). */
export function redisClientOptions(config: RedisConfig, role: string): RedisOptions {
  return {
    connectTimeout: config.connectTimeoutMs,
    commandTimeout: config.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => reconnectDelayMs(attempt),
    connectionName: `lm-gate:${role}`,
  };
}

const endpoint = (hp: string): { host: string; port: number } => {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
};

/** The client for the section's mode, with the gate's options (`extra` over them). */
export function createRedisClient(config: RedisConfig, role: string, extra: RedisOptions = {}): RedisClient {
  const options: RedisOptions = { ...redisClientOptions(config, role), ...extra };
  const auth = {
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(config.password !== undefined ? { password: config.password } : {}),
  };
  if (config.sentinel !== undefined) {
    const s = config.sentinel;
    return new (client().Redis)({
      ...options,
      ...auth,
      name: s.name,
      sentinels: s.sentinels.map(endpoint),
      ...(s.sentinelPassword !== undefined ? { sentinelPassword: s.sentinelPassword } : {}),
      // Asking the sentinels again follows the same bounded backoff as reconnecting.
      sentinelRetryStrategy: options.retryStrategy ?? null,
    } as RedisOptions);
  }
  if (config.cluster !== undefined) {
    return new (client().Cluster)(config.cluster.nodes.map(endpoint), {
      redisOptions: { ...options, ...auth },
      enableOfflineQueue: false,
      // The CLI's one attempt (extra.retryStrategy: () => null) holds for the cluster too.
      clusterRetryStrategy: extra.retryStrategy ?? ((attempt: number) => reconnectDelayMs(attempt)),
      ...(extra.lazyConnect ? { lazyConnect: true } : {}),
      // A command is not retried elsewhere after a failure: it fails, and the limit's
      // onRedisDown decides.
      maxRedirections: 4,
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
    });
  }
  return new (client().Redis)(config.url!, options);
}

/** A Redis client and the key names under redis.keyPrefix: what a store needs. */
export interface RedisKeyspace {
  readonly client: RedisClient;
  key(name: string): string;
}

export type ConnectionState = 'connecting' | 'ready' | 'down' | 'closed';

export interface RedisConnectionOptions {
  config: RedisConfig;
  /** What this connection is for: a metric label and a log field ("kill-commands"). */
  role: string;
  logger: Logger;
  metrics: RedisMetrics;
}

export class RedisConnection implements RedisKeyspace {
  readonly client: RedisClient;
  readonly role: string;
  readonly target: string;
  private readonly keyPrefix: string;
  private readonly logger: Logger;
  private readonly gauge: { set(v: number): void };
  private stateValue: ConnectionState = 'connecting';
  private downSince: number | undefined;
  private lastError: string | undefined;
  private readonly readyListeners: (() => void)[] = [];
  private readonly downListeners: (() => void)[] = [];

  constructor(opts: RedisConnectionOptions) {
    const { config } = opts;
    this.role = opts.role;
    this.target = redisTarget(config);
    this.keyPrefix = config.keyPrefix;
    this.logger = opts.logger;
    this.gauge = opts.metrics.connected.labels(opts.role);
    this.gauge.set(0);
    this.client = createRedisClient(config, opts.role);
    // ioredis emits an error per failed attempt; the state change is what is worth a line.
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      if (this.stateValue === 'connecting' && this.downSince === undefined) this.markDown();
    });
    this.client.on('ready', () => this.markReady());
    this.client.on('close', () => {
      if (this.stateValue === 'ready') this.markDown();
    });
    this.client.on('end', () => {
      this.stateValue = 'closed';
      this.gauge.set(0);
    });
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get ready(): boolean {
    return this.stateValue === 'ready';
  }

  /** A key or channel name under redis.keyPrefix. */
  key(name: string): string {
    return this.keyPrefix + name;
  }

  /** Called on every (re)connection once the connection can take commands. */
  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
    if (this.ready) queueMicrotask(listener);
  }

  /** Called each time a ready connection is lost (or the first attempt fails). */
  onDown(listener: () => void): void {
    this.downListeners.push(listener);
  }

  private markReady(): void {
    const wasDown = this.downSince;
    this.stateValue = 'ready';
    this.downSince = undefined;
    this.gauge.set(1);
    if (wasDown === undefined) this.logger.info({ redis: this.target, role: this.role }, 'redis connected');
    else
      this.logger.info(
        { redis: this.target, role: this.role, downMs: Date.now() - wasDown },
        'redis connection restored',
      );
    for (const l of this.readyListeners) l();
  }

  private markDown(): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'down';
    this.downSince = Date.now();
    this.gauge.set(0);
    this.logger.warn(
      { redis: this.target, role: this.role, err: this.lastError },
      'redis unreachable; retrying with backoff',
    );
    for (const l of this.downListeners) l();
  }

  /** Closes the connection; pending commands fail. */
  close(): void {
    this.stateValue = 'closed';
    this.gauge.set(0);
    this.client.disconnect(false);
  }
}
