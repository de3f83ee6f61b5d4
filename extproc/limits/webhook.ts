// Budget threshold events to a webhook: POSTed off the request path, one at a time, each retried
// a bounded number of times with backoff; at most maxPending wait, further ones are dropped and
// counted. Nothing here can hold a request or grow without bound.
import type { Logger } from '../telemetry/logger.ts';
import type { LimitMetrics } from './metrics.ts';

export interface BudgetEvent {
  type: 'budget.threshold';
  budget: string;
  /** `<scope>:<id>` whose spending crossed it ("tenant:acme"). */
  level: string;
  period: string;
  threshold: number;
  spent: number;
  amount: number;
  unit: 'tokens' | 'currency';
  at: string;
}

export interface WebhookOptions {
  url: string;
  timeoutMs: number;
  attempts: number;
  maxPending: number;
  logger: Logger;
  metrics: LimitMetrics;
  /** First retry delay; doubles per attempt. 1 s in production, less in tests. */
  backoffMs?: number;
}

export class BudgetWebhook {
  private readonly opts: WebhookOptions;
  private readonly queue: BudgetEvent[] = [];
  private running = false;
  private closed = false;

  constructor(opts: WebhookOptions) {
    this.opts = opts;
  }

  /** Queues the event; returns at once. */
  send(event: BudgetEvent): void {
    if (this.closed) return;
    if (this.queue.length >= this.opts.maxPending) {
      this.opts.metrics.webhook.labels('dropped').inc();
      return;
    }
    this.queue.push(event);
    if (!this.running) void this.drain();
  }

  /** Resolves when nothing is queued or in flight (tests). */
  async idle(): Promise<void> {
    while (this.running) await new Promise((r) => setTimeout(r, 10));
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let e = this.queue.shift(); e !== undefined && !this.closed; e = this.queue.shift()) await this.deliver(e);
    } finally {
      this.running = false;
    }
  }

  private async deliver(event: BudgetEvent): Promise<void> {
    const { url, timeoutMs, attempts, logger, metrics } = this.opts;
    const body = JSON.stringify(event);
    let delay = this.opts.backoffMs ?? 1000;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.body?.cancel();
        if (res.ok) {
          metrics.webhook.labels('sent').inc();
          return;
        }
      } catch {
        // retried below
      }
      if (attempt < attempts && !this.closed) {
        await new Promise((r) => setTimeout(r, delay).unref());
        delay *= 2;
      }
    }
    metrics.webhook.labels('failed').inc();
    logger.warn({ budget: event.budget, threshold: event.threshold }, 'budget webhook failed after every attempt');
  }
}
