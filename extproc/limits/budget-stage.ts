// Budgets: money (under metering.prices) or tokens per calendar period for the caller's key, team
// and tenant. Before the call a reservation is taken from every budget that applies, all or
// nothing: the input estimated from the body size plus max_tokens (or limits.defaultMaxTokens),
// priced for the model and route the request will get. A budget admits while something of it is
// left, so spending passes the amount by at most one reservation. When the request ends the
// reservation is settled to the real cost (its usage, priced), refunded whole when the request
// never went upstream or upstream failed without usage, and kept when usage is unknown.
//
// Runs before routing and policy: a budget that is spent may send the request to its
// downgradeTo model instead of refusing it, and that model is then routed, checked by the kill
// switch and judged by policy like one the client named.
import type { Config } from '../config/schema.ts';
import { costOf, priceBookFor } from '../metering/prices.ts';
import type { BudgetCheck, RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import { RoutingTable } from '../routing/table.ts';
import type { Counted, LimitBackend } from './backend.ts';
import type { BudgetConfig } from './config.ts';
import type { CounterItem } from './counters.ts';
import { retryAfterSeconds } from './headers.ts';
import { andThen, CounterNames, idSet, matches, outputAsked, subjectOf } from './levels.ts';
import { PeriodClock } from './period.ts';
import type { LimitStore } from './store.ts';

interface Budget {
  readonly cfg: BudgetConfig;
  readonly ids: ReadonlySet<string> | undefined;
  readonly clock: PeriodClock;
  readonly open: boolean;
  readonly ruleId: string;
  /** Its counters' key and audit level per subject and period. */
  readonly names: CounterNames;
}

/** One budget a request holds a reservation on; lives as long as the request. */
interface Held {
  readonly budget: Budget;
  readonly subject: string;
  readonly item: CounterItem;
  readonly check: BudgetCheck;
  /** The store that admitted the reservation, to settle it there; undefined until counted,
   * and when refused. Not the store's whole answer: only this outlives the check. */
  admittedIn: LimitStore | undefined;
}

const slot = defineSlot<Held[]>('limits.budget');

/** Tokens a request may take, estimated before the call. */
function estimate(ctx: RequestContext, config: Config): { input: number; output: number } {
  const l = config.limits;
  return { input: Math.ceil(ctx.requestBytes / l.bytesPerInputToken), output: outputAsked(ctx, l.defaultMaxTokens) };
}

export const budgets = defineStage({
  name: 'limits.budget',
  summary:
    'Budgets in money or tokens per day, week or month for key, team and tenant: reserved before the call, settled after; 429 or a downgrade to a cheaper model once spent.',
  needs: ['api', 'principal', 'parsed'],
  provides: ['admission'],
  create: (config, deps) => {
    const cfg = config.limits;
    if (cfg.budgets.length === 0) return {};
    const backend: LimitBackend | undefined = deps.limits;
    if (backend === undefined) throw new Error('limits.budget: no limit store (deps.limits)');
    const store: LimitStore = backend.storeFor(config);
    const prefix = config.redis?.keyPrefix ?? 'lmgate:';
    const prices = priceBookFor(config);
    // Pricing needs the route the request will take; routing runs after this stage.
    const table = new RoutingTable(config, { readCredentials: false });
    const list: Budget[] = cfg.budgets.map((b) => ({
      cfg: b,
      ids: idSet(b.scope, b.ids),
      clock: new PeriodClock(b.period, b.timeZone),
      open: (b.onRedisDown ?? cfg.onRedisDown) === 'open',
      ruleId: `limits.budgets.${b.id}`,
      names: new CounterNames(prefix, b.scope, b.id, 'b'),
    }));

    const priceOf = (ctx: RequestContext, model: string) => {
      const r = table.active ? table.resolve(model, ctx.dataClasses, ctx.principal?.attributes) : undefined;
      const route = r !== undefined && 'route' in r ? r.route?.choice.name : undefined;
      return prices.priceFor(r?.model ?? model, route);
    };

    const costFor = (ctx: RequestContext, b: Budget, model: string | undefined): number => {
      const t = estimate(ctx, config);
      if (b.cfg.unit === 'tokens') return t.input + t.output;
      // A call that names no model (TGI without routing.tgiModel) has no price, like an unpriced
      // model: metering.unknownModel decides whether it may go at all.
      const price = model === undefined ? undefined : priceOf(ctx, model);
      return price === undefined ? 0 : costOf(price, t);
    };

    /** The budgets that apply to this request, each with its reservation. The array is sized to
     * them first: pushed into, it would take V8's 16-slot backing store for one or two, and it
     * lives as long as the request. */
    const hold = (ctx: RequestContext, model: string | undefined, now: number): Held[] => {
      let n = 0;
      for (const b of list) {
        const subject = subjectOf(ctx, b.cfg.scope);
        if (subject !== undefined && matches(b.ids, subject)) n++;
      }
      const held = new Array<Held>(n);
      let at = 0;
      for (const b of list) {
        const subject = subjectOf(ctx, b.cfg.scope);
        if (subject === undefined || !matches(b.ids, subject)) continue;
        const span = b.clock.at(now);
        const cost = costFor(ctx, b, model);
        const name = b.names.of(ctx, subject, span.label);
        held[at++] = {
          budget: b,
          subject,
          item: {
            kind: 'budget',
            key: name.key,
            limit: b.cfg.amount,
            period: span.endMs,
            cost,
            queue: 0,
          },
          check: {
            id: b.cfg.id,
            level: name.level,
            unit: b.cfg.unit,
            period: span.label,
            amount: b.cfg.amount,
            reserved: cost,
            settled: null,
            refunded: 0,
            state: 'admitted',
          },
          admittedIn: undefined,
        };
      }
      return held;
    };

    const acquire = (held: readonly Held[]) =>
      backend.acquire(
        store,
        held.map((h) => h.item),
        held.map((h) => h.budget),
      );

    /** Records what was counted; returns the budget that refused, if one did. */
    const conclude = (held: Held[], counted: Counted): Held | undefined => {
      const { result } = counted;
      for (let i = 0; i < held.length; i++) {
        const h = held[i]!;
        if (counted.failOpen) h.check.fail_open = true;
        if (result.admitted) {
          h.admittedIn = counted.store;
          backend.observeBudget(h.budget.cfg, h.check, (result.states[i] ?? 0) - h.item.cost, result.states[i] ?? 0);
          backend.metrics.decisions.inc([h.budget.cfg.id, 'admitted']);
        }
      }
      if (result.admitted) return undefined;
      return held[result.denied];
    };

    const refuseSpent = (h: Held, now: number): never => {
      const b = h.budget.cfg;
      backend.metrics.decisions.inc([b.id, 'refused']);
      throw refuse('budget_exceeded', `Budget "${b.id}" of ${b.scope} ${h.subject} is spent for this ${b.period}.`, {
        ruleId: `limits.budgets.${b.id}`,
        headers: [['retry-after', retryAfterSeconds(h.item.period - now)]],
      });
    };

    /** The budget that refused names a cheaper model: send the request there, and count its
     * (cheaper) cost on every budget, the spent ones past their amount. */
    const downgrade = (ctx: RequestContext, spent: Held, to: string): void | Promise<void> => {
      const span = ctx.parsed!.modelSpan!;
      const from = ctx.modelRequested;
      ctx.modelRequested = to;
      ctx.editRequestBody(span.start, span.end, Buffer.from(JSON.stringify(to)));
      ctx.setMetadata('model_requested', to);
      ctx.decide({
        stage: 'limits.budget',
        ruleId: `limits.budgets.${spent.budget.cfg.id}.downgradeTo`,
        effect: 'modify',
        reason: `budget spent: ${from} downgraded to ${to}`,
      });
      backend.metrics.decisions.inc([spent.budget.cfg.id, 'downgraded']);
      const now = deps.clock.now();
      const held = hold(ctx, to, now);
      const withDowngrade = held.filter((h) => h.budget.cfg.downgradeTo !== undefined);
      const strict = held.filter((h) => h.budget.cfg.downgradeTo === undefined);
      for (const h of withDowngrade) h.check.state = 'downgraded';
      ctx.set(slot, held);
      ctx.budgets = held.map((h) => h.check);
      const rest = (): void | Promise<void> => {
        // Budgets that downgrade never refuse: their reservation is added whatever is left.
        if (withDowngrade.length === 0) return;
        const r = backend.adjust(
          store,
          withDowngrade.map((h) => h.item),
          withDowngrade.map((h) => h.item.cost),
        );
        const note = (
          res: { after: readonly (number | undefined)[]; before: readonly (number | undefined)[] } | undefined,
        ) => {
          // A reservation Redis did not take is not settled either (onEnd skips what was not counted).
          if (res === undefined) return;
          withDowngrade.forEach((h, i) => {
            h.admittedIn = store;
            backend.observeBudget(h.budget.cfg, h.check, res.before[i] ?? 0, res.after[i] ?? 0);
          });
        };
        if (r instanceof Promise) return r.then(note);
        note(r);
      };
      if (strict.length === 0) return rest();
      return andThen(acquire(strict), (counted) => {
        const denied = conclude(strict, counted);
        if (denied !== undefined) {
          denied.check.state = 'refused';
          refuseSpent(denied, now);
        }
        return rest();
      });
    };

    return {
      onRequestBody(ctx: RequestContext): void | Promise<void> {
        const model = ctx.modelRequested;
        // A call whose body names no model (TGI) is held too: it still spends tokens.
        if (ctx.parsed === undefined || (model === undefined && ctx.parsed.modelSpan !== undefined)) return;
        const now = deps.clock.now();
        const held = hold(ctx, model, now);
        if (held.length === 0) return;
        ctx.set(slot, held);
        ctx.budgets = held.map((h) => h.check);
        return andThen(acquire(held), (counted) => {
          const denied = conclude(held, counted);
          if (denied === undefined) return;
          const to = denied.budget.cfg.downgradeTo;
          // A body that names no model (TGI) cannot be sent to another one: refused.
          if (to === undefined || to === model || ctx.parsed?.modelSpan === undefined) {
            denied.check.state = 'refused';
            for (const h of held) h.check.reserved = 0;
            return refuseSpent(denied, now);
          }
          return downgrade(ctx, denied, to);
        });
      },
      onEnd(ctx: RequestContext): void | Promise<void> {
        const held = ctx.get(slot)?.filter((h) => h.admittedIn !== undefined);
        if (held === undefined || held.length === 0) return;
        const usage = ctx.usage;
        const wentUp = ctx.requestReleasedNs !== undefined && ctx.status !== undefined && ctx.status < 400;
        const deltas: number[] = [];
        for (const h of held) {
          let actual: number;
          if (usage !== undefined) {
            const price =
              h.budget.cfg.unit === 'tokens' ? undefined : prices.priceFor(ctx.modelRequested ?? '', ctx.route?.name);
            actual =
              h.budget.cfg.unit === 'tokens'
                ? usage.totalTokens
                : price === undefined
                  ? 0
                  : costOf(price, {
                      input: usage.inputTokens,
                      output: usage.outputTokens,
                      ...(usage.cachedInputTokens !== undefined ? { cachedInput: usage.cachedInputTokens } : {}),
                    });
          } else actual = wentUp ? h.item.cost : 0;
          h.check.settled = actual;
          h.check.refunded = Math.max(0, h.item.cost - actual);
          deltas.push(actual - h.item.cost);
        }
        // One adjust per store the reservations went to (a fail-open one counted here).
        const groups = new Map<LimitStore, number[]>();
        held.forEach((h, i) => {
          const s = h.admittedIn!;
          const g = groups.get(s) ?? [];
          g.push(i);
          groups.set(s, g);
        });
        const pending: Promise<unknown>[] = [];
        for (const [s, idx] of groups) {
          if (idx.every((i) => deltas[i] === 0)) continue;
          const r = backend.adjust(
            s,
            idx.map((i) => held[i]!.item),
            idx.map((i) => deltas[i]!),
          );
          const note = (
            res: { before: readonly (number | undefined)[]; after: readonly (number | undefined)[] } | undefined,
          ) => {
            if (res === undefined) return;
            idx.forEach((i, j) => {
              backend.observeBudget(held[i]!.budget.cfg, held[i]!.check, res.before[j] ?? 0, res.after[j] ?? 0);
            });
          };
          if (r instanceof Promise) pending.push(r.then(note));
          else note(r);
        }
        if (pending.length > 0) return Promise.all(pending).then(() => {});
      },
    };
  },
});
