// Limits and budgets metrics, one set per registry (a gate thread's). Label values are limit
// and budget ids from the config, and budget subjects (key, team, tenant ids), bounded.
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { BatchedCounter, BatchedGauge } from '../telemetry/batched.ts';
import { BoundedLabel } from '../telemetry/metrics.ts';

/** Distinct budget subjects kept as label values; more count under "other". */
export const MAX_SUBJECT_LABELS = 1000;

const byRegistry = new WeakMap<Registry, LimitMetrics>();

export class LimitMetrics {
  readonly decisions: BatchedCounter<'limit' | 'decision'>;
  readonly failOpen: Counter<'limit'>;
  readonly queued: Counter<'limit' | 'result'>;
  readonly waiting: Gauge;
  readonly storeErrors: Counter<'op'>;
  readonly budgetUsed: BatchedGauge<'budget' | 'subject'>;
  readonly thresholdCrossings: Counter<'budget' | 'threshold'>;
  readonly webhook: Counter<'result'>;
  readonly subjectLabel = new BoundedLabel(MAX_SUBJECT_LABELS);

  static for(registry: Registry): LimitMetrics {
    let m = byRegistry.get(registry);
    if (m === undefined) {
      m = new LimitMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  private constructor(registry: Registry) {
    const registers = [registry];
    this.decisions = new BatchedCounter({
      name: 'lmgate_limit_decisions_total',
      help: 'Rate limit and budget decisions, by limit or budget id: admitted, refused, downgraded.',
      labelNames: ['limit', 'decision'],
      registers,
    });
    this.failOpen = new Counter({
      name: 'lmgate_limit_fail_open_total',
      help: 'Requests admitted by a fail-open limit while Redis could not answer (counted in this replica alone).',
      labelNames: ['limit'],
      registers,
    });
    this.queued = new Counter({
      name: 'lmgate_limit_queued_total',
      help: 'Requests that waited in a rate limit queue (queueMs), by limit id and how the wait ended: admitted, refused (its turn was beyond the queue), left (the request ended while it waited, its client gone: its turn went back to the next in line); full: it would have waited, but limits.maxWaiting requests already were, so it was refused at once.',
      labelNames: ['limit', 'result'],
      registers,
    });
    this.waiting = new Gauge({
      name: 'lmgate_limit_waiting',
      help: 'Requests waiting in rate limit queues now.',
      aggregator: 'sum',
      registers,
    });
    this.storeErrors = new Counter({
      name: 'lmgate_limit_store_errors_total',
      help: 'Redis limit store calls that failed or timed out, by operation (acquire, adjust).',
      labelNames: ['op'],
      registers,
    });
    this.budgetUsed = new BatchedGauge({
      name: 'lmgate_budget_used_ratio',
      help: 'Share of the budget spent in the current period (1 = all), as this replica last saw it.',
      labelNames: ['budget', 'subject'],
      aggregator: 'max',
      registers,
    });
    this.thresholdCrossings = new Counter({
      name: 'lmgate_budget_threshold_crossings_total',
      help: 'Budget thresholds crossed (once per period and subject, whichever replica crossed it).',
      labelNames: ['budget', 'threshold'],
      registers,
    });
    this.webhook = new Counter({
      name: 'lmgate_budget_webhook_total',
      help: 'Budget threshold webhook events: sent, failed (after every attempt), dropped (queue full).',
      labelNames: ['result'],
      registers,
    });
  }
}
