// The `redis` config section: the one Redis the gate's replicas share. Optional: without it every
// replica works from its own config alone. The kill switch uses it now; limits and budgets
// (issue #10) are meant to share the same section and connection module (redis/connection.ts),
// each under its own key names below keyPrefix.
import { z } from 'zod';

export const redisConfig = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'expected redis://[user:password@]host:port[/db] or rediss:// for TLS')
      .describe(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal syntax load.ts reads
        'The Redis server, redis://[user:password@]host:port[/db], or rediss:// for TLS. Put a password in as ${REDIS_PASSWORD}, read from the environment; the gate logs only host and port. A standalone server (or a proxy that looks like one); Sentinel and Cluster are not supported yet. Takes effect at the next restart.',
      )
      .meta({ examples: ['redis://redis.lm-gate.svc:6379/0'] }),
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
  .optional()
  .describe(
    'Redis shared by the gate replicas: the kill switch announces kills through it so every replica refuses them within a second, and rate limits and budgets count in it with limits.store: redis. Unset: no Redis; each replica enforces its own config.',
  );

export type RedisConfig = NonNullable<z.infer<typeof redisConfig>>;
