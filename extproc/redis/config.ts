// The `redis` config section: the one Redis the gate's replicas share: a standalone server (url),
// one behind Sentinel, or a Cluster. Optional: without it every replica works from its own config
// alone. The kill switch and limits (limits.store: redis) share it, each under its own key names
// below keyPrefix, each with connections of its own (redis/connection.ts).
import { z } from 'zod';
import { hostPort } from '../config/host-port.ts';

export const redisConfig = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'expected redis://[user:password@]host:port[/db] or rediss:// for TLS')
      .optional()
      .describe(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal syntax load.ts reads
        'A standalone Redis server (or a proxy that looks like one), redis://[user:password@]host:port[/db], or rediss:// for TLS. Put a password in as ${REDIS_PASSWORD}, read from the environment; the gate logs only host and port. Set exactly one of url, sentinel and cluster. Takes effect at the next restart.',
      )
      .meta({ examples: ['redis://redis.lm-gate.svc:6379/0'] }),
    sentinel: z
      .object({
        name: z
          .string()
          .min(1)
          .describe('The master group name the sentinels monitor.')
          .meta({ examples: ['lm-gate'] }),
        sentinels: z
          .array(hostPort)
          .min(1)
          .describe('Sentinels to ask for the current master, host:port.')
          .meta({ examples: [['sentinel-0.redis:26379', 'sentinel-1.redis:26379']] }),
        sentinelPassword: z
          .string()
          .optional()
          .describe('Password of the sentinels themselves, when they require one.')
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal syntax load.ts reads
          .meta({ examples: ['${SENTINEL_PASSWORD}'] }),
      })
      .strict()
      .optional()
      .describe(
        'Redis behind Sentinel: the gate asks the sentinels for the master and follows a failover (commands fail while it happens, as when Redis is down). Takes effect at the next restart.',
      ),
    cluster: z
      .object({
        nodes: z
          .array(hostPort)
          .min(1)
          .describe('Some of the cluster nodes, host:port; the rest are discovered.')
          .meta({ examples: [['redis-0.redis:6379', 'redis-1.redis:6379', 'redis-2.redis:6379']] }),
      })
      .strict()
      .optional()
      .describe(
        "Redis Cluster. Every multi-key call the gate makes keeps its keys in one hash slot (hash tags: the kill switch's {kill}, a caller's limit levels {t:<tenant>}); a request's model and route limits live in other slots and are checked in their own call, refunded when a later one refuses. Takes effect at the next restart.",
      ),
    username: z
      .string()
      .optional()
      .describe('ACL user for sentinel and cluster mode (url carries its own). Takes effect at the next restart.')
      .meta({ examples: ['lm-gate'] }),
    password: z
      .string()
      .optional()
      .describe(
        'Password for sentinel and cluster mode (url carries its own); read it from the environment. Takes effect at the next restart.',
      )
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal syntax load.ts reads
      .meta({ examples: ['${REDIS_PASSWORD}'] }),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:._-]{0,64}$/, 'up to 64 characters of A-Z a-z 0-9 : . _ -')
      .default('lmgate:')
      .describe(
        'Prepended to every key and channel the gate uses, so several gate deployments (or other applications) can share one Redis. Replicas that must see each other use the same prefix. Takes effect at the next restart.',
      ),
    connectTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(1000)
      .describe(
        'Milliseconds a connection attempt may take before it is abandoned and retried with backoff (100 ms doubling to 5 s). Redis being unreachable never stops the gate from starting or serving. Takes effect at the next restart.',
      ),
    commandTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(500)
      .describe(
        'Milliseconds one Redis command may take before it fails. Commands are never queued while the connection is down: they fail at once, so nothing waits on an unreachable Redis and no queue grows. Takes effect at the next restart.',
      ),
  })
  .strict()
  .superRefine((r, ctx) => {
    const modes = [r.url, r.sentinel, r.cluster].filter((m) => m !== undefined).length;
    if (modes !== 1)
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of url, sentinel and cluster' });
  })
  .optional()
  .describe(
    'Redis shared by the gate replicas: the kill switch announces kills through it so every replica refuses them within a second, and rate limits and budgets count in it with limits.store: redis. Unset: no Redis; each replica enforces its own config.',
  );

export type RedisConfig = NonNullable<z.infer<typeof redisConfig>>;
