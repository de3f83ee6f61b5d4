// The limits' stores for one gate thread, kept across config reloads: the memory store (the
// store of `store: memory`, and where fail-open limits count while Redis is down) and, with
// `store: redis`, the Redis store on a connection of its own. Decides what a Redis failure
// means: 503 when any limit involved fails closed, else the memory store answers.
import type { Config } from '../config/schema.ts';
import type { BudgetCheck } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import type { Clock } from '../pipeline/stage.ts';
import { RedisConnection } from '../redis/connection.ts';
import { RedisMetrics } from '../redis/metrics.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { BudgetConfig } from './config.ts';
import type { CounterItem } from './counters.ts';
import { MemoryLimitStore } from './memory-store.ts';
import { LimitMetrics } from './metrics.ts';
import type { PortLimitStore } from './port-store.ts';
import { Waiting } from './queue.ts';
import { RedisLimitStore } from './redis-store.ts';
import type { AcquireResult, AdjustResult, LimitStore } from './store.ts';
import { BudgetWebhook } from './webhook.ts';

/** Threshold crossings this thread has raised, so a refund and a new reservation around a
 * threshold do not raise it twice; bounded (cleared when full). */
const MAX_CROSSINGS_REMEMBERED = 10_000;

/** Where one admission was counted: settle it in the same place. */
export interface Counted {
  readonly result: AcquireResult;
  readonly store: LimitStore;
  /** Redis could not answer and the limits failed open: counted in this replica alone. */
  readonly failOpen: boolean;
}

/** Time left for the limits' Redis calls within one message: the gate answers 503 itself at
 * server.messageDeadlineMs, and the refusal must be ours (limits_unavailable) before that. */
const DEADLINE_MARGIN_MS = 30;

/** What acquire() needs to know of an item's limit when Redis fails: precomputed per limit at
 * config load, so a request passes its limits as they are, with nothing built per call. */
export interface LimitPolicy {
  /** onRedisDown: open (admit, count here) rather than closed (503). */
  readonly open: boolean;
  /** limits.rate.<id> or limits.budgets.<id>: the rule id of a 503 and the fail-open metric. */
  readonly ruleId: string;
}

export class LimitBackend {
  readonly memory: MemoryLimitStore;
  /** Requests waiting in rate limit queues in this thread (limits.maxWaiting bounds it). */
  readonly waiting = new Waiting();
  readonly metrics: LimitMetrics;
  private readonly redis: RedisLimitStore | undefined;
  private readonly conn: RedisConnection | undefined;
  private readonly logger: Logger;
  readonly webhook: BudgetWebhook | undefined;
  private readonly crossed = new Set<string>();

  /** The memory store of the gate's main thread, over a port, for a gate worker. */
  private readonly shared: PortLimitStore | undefined;

  constructor(opts: { config: Config; logger: Logger; metrics: Metrics; clock: Clock; sharedMemory?: PortLimitStore }) {
    const { config } = opts;
    this.logger = opts.logger;
    this.metrics = LimitMetrics.for(opts.metrics.registry);
    this.memory = new MemoryLimitStore({ maxEntries: config.limits.maxMemoryEntries, clock: opts.clock });
    this.shared = opts.sharedMemory;
    if (config.limits.store === 'redis' && config.redis !== undefined) {
      const timeout = Math.max(
        10,
        Math.min(config.redis.commandTimeoutMs, config.server.messageDeadlineMs - DEADLINE_MARGIN_MS),
      );
      this.conn = new RedisConnection({
        config: { ...config.redis, commandTimeoutMs: timeout },
        role: 'limits',
        logger: opts.logger,
        metrics: RedisMetrics.for(opts.metrics.registry),
      });
      this.redis = new RedisLimitStore(this.conn);
    }
    const hook = config.limits.webhook;
    if (hook !== undefined) this.webhook = new BudgetWebhook({ ...hook, logger: opts.logger, metrics: this.metrics });
  }

  /** A budget counter went from `before` to `after`: the used-ratio gauge, and the thresholds
   * it crossed upwards (metric, webhook), each once per period and subject in this thread. */
  observeBudget(cfg: BudgetConfig, check: BudgetCheck, before: number, after: number): void {
    const subject = this.metrics.subjectLabel.value(check.level);
    this.metrics.budgetUsed.set([cfg.id, subject], after / cfg.amount);
    if (after <= before) return;
    for (const t of cfg.thresholds) {
      const mark = (cfg.amount * t) / 100;
      if (!(before < mark && after >= mark)) continue;
      const id = `${cfg.id}|${check.level}|${check.period}|${t}`;
      if (this.crossed.has(id)) continue;
      if (this.crossed.size >= MAX_CROSSINGS_REMEMBERED) this.crossed.clear();
      this.crossed.add(id);
      this.metrics.thresholdCrossings.labels(cfg.id, String(t)).inc();
      this.webhook?.send({
        type: 'budget.threshold',
        budget: cfg.id,
        level: check.level,
        period: check.period,
        threshold: t,
        spent: after,
        amount: cfg.amount,
        unit: cfg.unit,
        at: new Date().toISOString(),
      });
    }
  }

  /** The store a config snapshot counts in: Redis only when the gate started with it (the
   * connection is opened once, at start); else the memory store, the main thread's for a gate
   * worker. While Redis is down, fail-open limits count in this thread's own memory. */
  storeFor(config: Config): LimitStore {
    if (config.limits.store === 'redis' && this.redis !== undefined) return this.redis;
    return this.shared ?? this.memory;
  }

  /** Acquire `items` in `store`; when Redis fails: refuse with 503 if any of `limits` is not
   * open, else count them here. `limits[i]` is item i's limit (its onRedisDown and rule id).
   *
   * Not raced against ctx.signal on purpose: a script sent cannot be taken back, and a reply
   * abandoned at the deadline would leave its reservation counted forever. The wait is bounded
   * instead (the connection's command timeout sits under server.messageDeadlineMs), and a reply
   * that lands after the deadline answered is recorded, so the stage's onEnd, which the state
   * machine runs only after that late hook settled, refunds it. */
  acquire(
    store: LimitStore,
    items: readonly CounterItem[],
    limits: readonly LimitPolicy[],
  ): Counted | Promise<Counted> {
    const r = store.acquire(items);
    if (!(r instanceof Promise)) return { result: r, store, failOpen: false };
    return r.then(
      (result) => ({ result, store, failOpen: false }),
      (err: unknown) => {
        this.metrics.storeErrors.labels('acquire').inc();
        this.logger.warn({ err: (err as Error).message }, 'limits: Redis did not answer');
        const closed = limits.find((l) => !l.open);
        if (closed !== undefined)
          throw refuse('limits_unavailable', 'Rate limits cannot be checked right now; retry the request.', {
            ruleId: closed.ruleId,
          });
        for (const id of new Set(limits.map((l) => l.ruleId))) this.metrics.failOpen.labels(id).inc();
        return { result: this.memory.acquire(items), store: this.memory, failOpen: true };
      },
    );
  }

  /** Settle or refund; a failure is logged and counted, never thrown (the counter keeps the
   * reservation: the error is on the safe side). */
  adjust(
    store: LimitStore,
    items: readonly CounterItem[],
    deltas: readonly number[],
  ): AdjustResult | Promise<AdjustResult | undefined> | undefined {
    const r = store.adjust(items, deltas);
    if (!(r instanceof Promise)) return r;
    return r.catch((err: unknown) => {
      this.metrics.storeErrors.labels('adjust').inc();
      this.logger.warn({ err: (err as Error).message }, 'limits: Redis did not settle a reservation');
      return undefined;
    });
  }

  close(): void {
    this.conn?.close();
    this.webhook?.close();
    this.shared?.close();
  }
}
