// The `limits` config section: rate limits (requests and tokens per period) and budgets (money or
// tokens per calendar period), for the caller's key, user, team and tenant and for models and
// routes; where their counters live (this process, or Redis shared by the replicas) and what
// happens when Redis cannot answer.
import { z } from 'zod';
import { isTimeZone } from '../config/time-zone.ts';

const onRedisDown = z
  .enum(['closed', 'open'])
  .meta({ examples: ['open'] })
  .describe(
    'When Redis cannot answer in time: closed refuses the request with 503 limits_unavailable; open admits it, counts it in this replica alone meanwhile, and flags the audit record (limits[].fail_open) and lmgate_limit_fail_open_total.',
  );

const ids = z
  .array(z.string().min(1).max(256))
  .min(1)
  .optional()
  .describe('Only these keys, users, teams, tenants, models or routes; unset: every one, each with its own counter.')
  .meta({ examples: [['llama-3.1-70b']] });

const rateLimit = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'up to 64 characters of A-Z a-z 0-9 . _ -')
      .describe('Names the limit in refusals (rule id limits.rate.<id>), the audit and metrics.')
      .meta({ examples: ['per-key'] }),
    scope: z
      .enum(['key', 'user', 'team', 'tenant', 'model', 'route'])
      .describe(
        "Whose counter: key is the caller's credential (an API key's id, a JWT's subject, a certificate's identity), user/team/tenant the principal's; model is the model upstream gets (an alias resolved), route the route chosen. A caller without a user or team is not limited by user or team limits.",
      )
      .meta({ examples: ['key'] }),
    ids,
    limit: z
      .number()
      .int()
      .positive()
      .describe('How many `unit`s are admitted per period.')
      .meta({ examples: [100] }),
    unit: z
      .enum(['requests', 'tokens', 'bytes'])
      .default('requests')
      .describe(
        "requests: requests admitted. tokens: input plus output tokens, reserved before the call (the input estimate plus max_tokens, or limits.defaultMaxTokens, for each completion asked for: n, best_of) and settled to the usage upstream reports when the request ends. bytes: request body bytes, counted at the request headers from content-length for key, user, team and tenant limits (before Envoy is made to read the body), else when the body has arrived; what bounds one caller's uploads. A limit on two units is two entries.",
      ),
    per: z
      .enum(['second', 'minute', 'hour', 'day'])
      .describe('The period the counts are per.')
      .meta({ examples: ['minute'] }),
    queueMs: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'A request over this limit whose turn comes within this many milliseconds waits for it instead of being refused: the caller is slowed to the limit, not failed, and while it waits Envoy holds its body (reading no more than its buffer limit). One whose turn is further away waits this long and is then refused with 429, so a client that ignores 429 and retries at once is paced too. At most limits.maxWaiting requests wait at once; past that, refusals are at once. 0: refuse at once. Must stay under server.maxMessageDeadlineMs by 100 ms (the gate asks Envoy to wait that long for the answer).',
      )
      .meta({ examples: [1000] }),
    onRedisDown: onRedisDown.optional(),
  })
  .strict();

const budget = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'up to 64 characters of A-Z a-z 0-9 . _ -')
      .describe('Names the budget in refusals (rule id limits.budgets.<id>), the audit, metrics and the webhook.')
      .meta({ examples: ['acme-monthly'] }),
    scope: z
      .enum(['key', 'team', 'tenant'])
      .describe('Whose spending it bounds (key as for rate limits).')
      .meta({ examples: ['tenant'] }),
    ids,
    amount: z
      .number()
      .positive()
      .describe('The budget per period, in `unit`.')
      .meta({ examples: [500] }),
    unit: z
      .enum(['tokens', 'currency'])
      .default('currency')
      .describe(
        'tokens: input plus output tokens; currency: cost from the metering prices (a request for an unpriced model costs nothing).',
      ),
    period: z
      .enum(['day', 'week', 'month'])
      .describe('Calendar period, in timeZone; weeks start on Monday. Spending starts at 0 each period.')
      .meta({ examples: ['month'] }),
    timeZone: z
      .string()
      .default('UTC')
      .describe('IANA time zone the periods are counted in.')
      .meta({
        examples: ['Europe/Berlin'],
      }),
    thresholds: z
      .array(z.number().positive().max(1000))
      .default([50, 80, 100])
      .describe(
        'Percentages of the amount whose crossing (by a reservation or a settlement) raises lmgate_budget_threshold_crossings_total and, with limits.webhook set, a webhook call: once per period from the replica that crossed it (a refund that takes spending back under and a later crossing on another replica can raise it again).',
      ),
    downgradeTo: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Once the budget is spent, send requests to this (cheaper) model instead of refusing them with 429 budget_exceeded. It is routed and judged by policy like a model the client named; it must not be a routing alias.',
      )
      .meta({ examples: ['llama-3.1-8b'] }),
    onRedisDown: onRedisDown.optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (!isTimeZone(b.timeZone))
      ctx.addIssue({ code: 'custom', path: ['timeZone'], message: `unknown IANA time zone "${b.timeZone}"` });
  });

export const limitsConfig = z
  .object({
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe(
        "Where counters live. memory: in this gate process, exact across its workers (the main thread keeps them when server.workers > 1), but each replica counts alone. redis: in the `redis` section's Redis, shared by every replica, each admission one atomic script for every level. Takes effect at the next restart.",
      ),
    onRedisDown: onRedisDown.default('closed'),
    defaultMaxTokens: z
      .number()
      .int()
      .positive()
      .default(1024)
      .describe('Output tokens reserved for a request that sets no max_tokens (token limits and budgets).'),
    bytesPerInputToken: z
      .number()
      .positive()
      .default(4)
      .describe(
        'Input tokens are estimated before the call as the body size divided by this (JSON overhead makes it an overestimate, which reserves too much rather than too little).',
      ),
    headers: z
      .boolean()
      .default(true)
      .describe(
        "Add OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers to admitted responses (refusals always carry them).",
      ),
    maxWaiting: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe(
        'Most requests that wait in rate limit queues (queueMs) at once, per gate thread; a request that would wait beyond this is answered at once (429), so the requests held, and the bodies Envoy holds for them, stay bounded.',
      ),
    maxMemoryEntries: z
      .number()
      .int()
      .positive()
      .default(100_000)
      .describe(
        'Most counters the memory store (and the fail-open fallback) holds; counters of full buckets and past periods are dropped first, then the oldest. Takes effect at the next restart.',
      ),
    rate: z
      .array(rateLimit)
      .default([])
      .describe('Rate limits; a request is checked against every one that applies, all or nothing.'),
    budgets: z.array(budget).default([]).describe('Budgets per calendar period.'),
    webhook: z
      .object({
        url: z
          .url()
          .describe('Receives a JSON POST when a budget crosses a threshold.')
          .meta({ examples: ['https://hooks.example.com/lm-gate/budgets'] }),
        timeoutMs: z.number().int().positive().default(2000).describe('Milliseconds one attempt may take.'),
        attempts: z.number().int().min(1).max(10).default(3).describe('Attempts per event (1 s, 2 s, 4 s apart).'),
        maxPending: z
          .number()
          .int()
          .positive()
          .default(1000)
          .describe(
            'Events waiting to be sent at most; more are dropped and counted (lmgate_budget_webhook_total{result="dropped"}).',
          ),
      })
      .strict()
      .optional()
      .describe('Where budget threshold events go, off the request path. Takes effect at the next restart.'),
  })
  .strict()
  .prefault({})
  .describe(
    'Rate limits and budgets (limits.rate and limits.budget stages): per key, user, team, tenant, model and route, in memory or shared through Redis.',
  );

export type LimitsConfig = z.infer<typeof limitsConfig>;
export type RateLimitConfig = LimitsConfig['rate'][number];
export type BudgetConfig = LimitsConfig['budgets'][number];
