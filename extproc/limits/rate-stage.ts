// Rate limits: requests, tokens and request body bytes per second, minute, hour or day, for the
// caller's key, user, team and tenant and for the model and route, every level that applies
// checked and updated together, all or nothing (counters.ts: GCRA). A limit with a queue
// (queueMs) makes a request over it wait for its turn instead of refusing it (queue.ts).
//
// When: request limits of the caller's levels are decided at the request headers (nothing about
// them waits for the body), and so are their byte limits when content-length declares the size
// (before Envoy is made to read the body: a request that must wait holds its upload there);
// model and route limits, byte limits of a body without content-length, and every token limit
// once the body is parsed and routed. Tokens are reserved then (input estimated from the body size, plus
// max_tokens or limits.defaultMaxTokens) and settled to the usage upstream reports when the
// request ends; a request that never went upstream is refunded, one without usage keeps its
// reservation. When the body's check refuses, the request counted at the headers is given back,
// so a request the limits refuse counts at no level; one a later stage refuses (policy at the
// body) still counts, so a caller cannot hammer with refused requests unlimited.
import type { LimitCheck, RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import type { Counted, LimitBackend } from './backend.ts';
import { type CounterItem, type CounterView, view, waitMs } from './counters.ts';
import { type HeaderList, pushRateHeaders, type RateUnit, retryAfterSeconds } from './headers.ts';
import {
  andThen,
  CALLER_SCOPES,
  type CounterName,
  CounterNames,
  idSet,
  matches,
  outputAsked,
  type Scope,
  subjectOf,
} from './levels.ts';
import { PERIODS } from './periods.ts';
import { sleep } from './queue.ts';
import type { LimitStore } from './store.ts';

type Unit = RateUnit;

interface Level {
  readonly id: string;
  readonly scope: Scope;
  readonly ids: ReadonlySet<string> | undefined;
  readonly unit: Unit;
  readonly limit: number;
  readonly periodMs: number;
  readonly per: string;
  /** queueMs: how long a request over the limit may wait for its turn. */
  readonly queue: number;
  readonly open: boolean;
  readonly ruleId: string;
  /** Its counters' key and audit level per subject. */
  readonly names: CounterNames;
}

/** One check: the counters, the limits they belong to and their names, and where they were
 * counted. Only what the request's end needs outlives the check (not the store's answer): it
 * lives as long as the request. */
interface Admission {
  readonly items: CounterItem[];
  readonly levels: Level[];
  readonly names: CounterName[];
  /** The store that admitted it, to settle or give back there; undefined until counted, and
   * when refused. */
  admittedIn: LimitStore | undefined;
  /** Index into ctx.limits of items[0]. */
  auditAt: number;
  /** It holds a place among the requests allowed to wait (limits.maxWaiting); its items carry
   * their levels' queues only then. */
  mayWait: boolean;
  /** No place was left: its items' queues were taken away. */
  queueFull: boolean;
}

interface RateState {
  header: Admission | undefined;
  body: Admission | undefined;
  /** Tokens reserved per token counter of the body admission. */
  reserved: number;
  /** The caller's byte limits wait for the body: no content-length declared its size. */
  bytesAtBody: boolean;
  /** The admitted response's x-ratelimit-* trios, four numbers each: the unit (UNITS' index),
   * limit, remaining and reset ms. Numbers, formatted into headers only at the response
   * headers, because they live as long as the request does. */
  headerViews: number[] | undefined;
}

const UNITS: readonly Unit[] = ['requests', 'tokens', 'bytes'];

const slot = defineSlot<RateState>('limits.rate');

/** The body size content-length declares (Envoy holds the body to it), or undefined. */
function declaredLength(ctx: RequestContext): number | undefined {
  const v = ctx.headers.get('content-length');
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** Every token counter of a request reserves the same amount: the input estimate plus the
 * output asked for. */
function reservation(ctx: RequestContext, bytesPerToken: number, defaultMaxTokens: number): number {
  return Math.ceil(ctx.requestBytes / bytesPerToken) + outputAsked(ctx, defaultMaxTokens);
}

/** The tightest (least remaining) view per unit. */
function tightest(
  adm: Admission,
  states: readonly (number | undefined)[],
  now: number,
): Partial<Record<Unit, CounterView>> {
  const out: Partial<Record<Unit, CounterView>> = {};
  for (let i = 0; i < adm.items.length; i++) {
    const v = view(adm.items[i]!, states[i], true, now);
    const unit = adm.levels[i]!.unit;
    const cur = out[unit];
    if (cur === undefined || v.remaining < cur.remaining) out[unit] = v;
  }
  return out;
}

export const rateLimits = defineStage({
  name: 'limits.rate',
  summary:
    'Rate limits on requests, tokens and request body bytes per key, user, team, tenant, model and route (GCRA, all levels at once, optionally queued), with x-ratelimit-* headers.',
  needs: ['api', 'principal'],
  provides: ['admission'],
  create: (config, deps) => {
    const cfg = config.limits;
    if (cfg.rate.length === 0) return {};
    const backend: LimitBackend | undefined = deps.limits;
    if (backend === undefined) throw new Error('limits.rate: no limit store (deps.limits)');
    const store: LimitStore = backend.storeFor(config);
    const prefix = config.redis?.keyPrefix ?? 'lmgate:';
    const metrics = backend.metrics;
    const levels: Level[] = [];
    for (const r of cfg.rate) {
      levels.push({
        id: r.id,
        scope: r.scope,
        ids: idSet(r.scope, r.ids),
        unit: r.unit,
        limit: r.limit,
        periodMs: PERIODS[r.per],
        per: r.per,
        open: (r.onRedisDown ?? cfg.onRedisDown) === 'open',
        ruleId: `limits.rate.${r.id}`,
        queue: r.queueMs,
        names: new CounterNames(prefix, r.scope, r.id, r.unit[0]!),
      });
    }
    const caller = (l: Level): boolean => CALLER_SCOPES.has(l.scope);
    const headerLevels = levels.filter((l) => l.unit === 'requests' && caller(l));
    /** The caller's byte limits: at the headers when content-length declares the size. */
    const callerBytes = levels.filter((l) => l.unit === 'bytes' && caller(l));
    const bodyLevels = levels.filter((l) => !(caller(l) && (l.unit === 'requests' || l.unit === 'bytes')));
    const queues = levels.some((l) => l.queue > 0);
    const waiting = backend.waiting;

    /** The cost of one unit of `l` for this request; 0: the level does not count it. */
    const costOf = (l: Level, tokens: number, bytes: number): number =>
      l.unit === 'requests' ? 1 : l.unit === 'tokens' ? tokens : bytes;

    /** The levels of `from` that count this request, added to `adm` (a new one when undefined).
     * Its arrays are sized to the levels first: pushed into, each would take V8's 16-slot
     * backing store for one or two levels, and they live as long as the request. */
    const build = (
      ctx: RequestContext,
      from: readonly Level[],
      tokens: number,
      bytes: number,
      adm?: Admission,
    ): Admission | undefined => {
      let n = 0;
      for (const l of from) {
        // A request without a body takes no bytes.
        if (costOf(l, tokens, bytes) === 0) continue;
        const subject = subjectOf(ctx, l.scope);
        if (subject !== undefined && matches(l.ids, subject)) n++;
      }
      if (n === 0) return adm;
      let at = 0;
      if (adm === undefined)
        adm = {
          items: new Array<CounterItem>(n),
          levels: new Array<Level>(n),
          names: new Array<CounterName>(n),
          admittedIn: undefined,
          auditAt: 0,
          mayWait: false,
          queueFull: false,
        };
      else {
        at = adm.items.length;
        adm.items.length += n;
        adm.levels.length += n;
        adm.names.length += n;
      }
      for (const l of from) {
        const cost = costOf(l, tokens, bytes);
        if (cost === 0) continue;
        const subject = subjectOf(ctx, l.scope);
        if (subject === undefined || !matches(l.ids, subject)) continue;
        const name = l.names.of(ctx, subject);
        adm.items[at] = { kind: 'rate', key: name.key, limit: l.limit, period: l.periodMs, cost, queue: l.queue };
        adm.levels[at] = l;
        adm.names[at] = name;
        at++;
      }
      return adm;
    };

    /** Takes a place among the waiting for a request that meets a queue; without one (all taken)
     * its items lose their queues, so the store refuses at once what it would have queued. */
    const placeInQueue = (adm: Admission): void => {
      if (!queues || !adm.items.some((it) => it.queue > 0)) return;
      if (waiting.enter(cfg.maxWaiting)) {
        adm.mayWait = true;
        metrics.waiting.inc();
        return;
      }
      adm.queueFull = true;
      for (let i = 0; i < adm.items.length; i++) {
        const it = adm.items[i]!;
        if (it.queue > 0) adm.items[i] = { ...it, queue: 0 };
      }
    };
    const leaveQueue = (adm: Admission): void => {
      if (!adm.mayWait) return;
      adm.mayWait = false;
      waiting.leave();
      metrics.waiting.dec();
    };

    const stateOf = (ctx: RequestContext): RateState => {
      let s = ctx.get(slot);
      if (s === undefined) {
        s = { header: undefined, body: undefined, reserved: 0, bytesAtBody: false, headerViews: undefined };
        ctx.set(slot, s);
      }
      return s;
    };

    /** Records the check in ctx.limits and the metrics; throws the 429 when refused. `waited`:
     * ms the request spent in a queue before this. */
    const conclude = (ctx: RequestContext, adm: Admission, counted: Counted, waited: number, left = false): void => {
      const { result } = counted;
      if (result.admitted) adm.admittedIn = counted.store;
      ctx.limits ??= [];
      adm.auditAt = ctx.limits.length;
      for (let i = 0; i < adm.items.length; i++) {
        const l = adm.levels[i]!;
        const denied = !result.admitted && result.denied === i;
        const v = view(adm.items[i]!, result.states[i], result.admitted, result.now);
        const check: LimitCheck = {
          id: l.id,
          level: adm.names[i]!.level,
          unit: l.unit,
          limit: l.limit,
          remaining: v.remaining,
          decision: result.admitted ? 'admitted' : 'refused',
        };
        if (l.unit === 'tokens') check.reserved = result.admitted ? adm.items[i]!.cost : 0;
        if (waited > 0 && (result.admitted ? waitMs(adm.items[i]!, result.states[i], result.now) > 0 : denied)) {
          check.queued_ms = waited;
          if (left) check.left_queue = true;
        }
        if (counted.failOpen) check.fail_open = true;
        ctx.limits.push(check);
        if (result.admitted || denied) metrics.decisions.inc([l.id, result.admitted ? 'admitted' : 'refused']);
      }
      if (result.admitted) {
        if (cfg.headers) {
          const s = stateOf(ctx);
          const t = tightest(adm, result.states, result.now);
          s.headerViews ??= [];
          const views = s.headerViews;
          for (let u = 0; u < UNITS.length; u++) {
            const v = t[UNITS[u]!];
            if (v !== undefined) views.push(u, v.limit, v.remaining, v.resetMs);
          }
        }
        return;
      }
      const i = result.denied;
      const l = adm.levels[i]!;
      if (adm.queueFull && l.queue > 0) metrics.queued.inc({ limit: l.id, result: 'full' });
      const v = view(adm.items[i]!, result.states[i], false, result.now);
      const headers: HeaderList = [['retry-after', retryAfterSeconds(v.retryAfterMs - waited)]];
      pushRateHeaders(headers, l.unit, v.limit, v.remaining, v.resetMs);
      const cost = adm.items[i]!.cost;
      const tooBig = cost > l.limit;
      throw refuse(
        'rate_limit_exceeded',
        !tooBig
          ? `Rate limit "${l.id}" reached for ${l.scope} ${adm.names[i]!.subject}: ${l.limit} ${l.unit} per ${l.per}.`
          : l.unit === 'bytes'
            ? `Request too large for the ${l.scope} rate limit "${l.id}": its body is ${cost} bytes, the limit is ${l.limit} per ${l.per}.`
            : `Request too large for the ${l.scope} rate limit "${l.id}": it may reserve ${cost} tokens, the limit is ${l.limit} per ${l.per}. Lower max_tokens.`,
        { ruleId: l.ruleId, headers },
      );
    };

    /** Gives back the requests and bytes a request reserved for a turn it did not wait for. Its
     * tokens are onEnd's to give back: it settles them to nothing for a request that never went
     * upstream. */
    const giveBackTurn = (adm: Admission, store: LimitStore): void | Promise<void> => {
      const items: CounterItem[] = [];
      for (let i = 0; i < adm.items.length; i++) if (adm.levels[i]!.unit !== 'tokens') items.push(adm.items[i]!);
      if (items.length === 0) return;
      const r = backend.adjust(
        store,
        items,
        items.map((it) => -it.cost),
      );
      if (r instanceof Promise) return r.then(() => {});
    };

    /** After the store answered: a request that holds a place in the queues waits for its turn
     * (admitted) or the denying level's whole queue (refused) before it is concluded. */
    const decide = (ctx: RequestContext, adm: Admission, counted: Counted): void | Promise<void> => {
      const { result } = counted;
      let wait = 0;
      if (result.admitted)
        for (let i = 0; i < adm.items.length; i++)
          wait = Math.max(wait, waitMs(adm.items[i]!, result.states[i], result.now));
      else wait = adm.items[result.denied]!.queue;
      if (wait === 0) {
        leaveQueue(adm);
        return conclude(ctx, adm, counted, 0);
      }
      ctx.takeLonger();
      return sleep(Math.ceil(wait), ctx.signal).then((waited) => {
        leaveQueue(adm);
        if (result.admitted && ctx.signal.aborted) {
          // The request ended while it waited (its client went away, the gate drained or gave
          // up): it never took its turn, so the turn goes back to those behind it.
          for (let i = 0; i < adm.items.length; i++)
            if (waitMs(adm.items[i]!, result.states[i], result.now) > 0)
              metrics.queued.inc({ limit: adm.levels[i]!.id, result: 'left' });
          conclude(ctx, adm, counted, Math.max(1, waited), true);
          return giveBackTurn(adm, counted.store);
        }
        const by = result.admitted ? undefined : adm.levels[result.denied]!.id;
        for (let i = 0; i < adm.items.length; i++) {
          const id = adm.levels[i]!.id;
          if (by === undefined ? waitMs(adm.items[i]!, result.states[i], result.now) > 0 : id === by)
            metrics.queued.inc({ limit: id, result: result.admitted ? 'admitted' : 'refused' });
        }
        conclude(ctx, adm, counted, Math.max(1, waited));
      });
    };

    const check = (ctx: RequestContext, adm: Admission): void | Promise<void> => {
      placeInQueue(adm);
      if (!adm.mayWait)
        return andThen(backend.acquire(store, adm.items, adm.levels), (counted) => conclude(ctx, adm, counted, 0));
      // The place is given back however the store call ends.
      const failed = (err: unknown): never => {
        leaveQueue(adm);
        throw err;
      };
      let r: Counted | Promise<Counted>;
      try {
        r = backend.acquire(store, adm.items, adm.levels);
      } catch (err) {
        return failed(err);
      }
      return r instanceof Promise ? r.then((counted) => decide(ctx, adm, counted), failed) : decide(ctx, adm, r);
    };

    /** Gives back the request the headers counted when the body's check refused. */
    const refundHeader = (s: RateState): void | Promise<void> => {
      const h = s.header;
      if (h?.admittedIn === undefined) return;
      s.header = undefined;
      const r = backend.adjust(
        h.admittedIn,
        h.items,
        h.items.map((it) => -it.cost),
      );
      if (r instanceof Promise) return r.then(() => {});
    };

    return {
      onRequestHeaders(ctx: RequestContext): void | Promise<void> {
        if (headerLevels.length === 0 && callerBytes.length === 0) return;
        let adm = build(ctx, headerLevels, 0, 0);
        if (callerBytes.length > 0 && ctx.hasRequestBody) {
          const declared = declaredLength(ctx);
          if (declared === undefined) stateOf(ctx).bytesAtBody = true;
          else adm = build(ctx, callerBytes, 0, declared, adm);
        }
        if (adm === undefined) return;
        stateOf(ctx).header = adm;
        return check(ctx, adm);
      },
      onRequestBody(ctx: RequestContext): void | Promise<void> {
        const bytesHere = ctx.get(slot)?.bytesAtBody === true;
        if ((bodyLevels.length === 0 || ctx.parsed === undefined) && !bytesHere) return;
        const tokens = ctx.parsed === undefined ? 0 : reservation(ctx, cfg.bytesPerInputToken, cfg.defaultMaxTokens);
        let adm = ctx.parsed === undefined ? undefined : build(ctx, bodyLevels, tokens, ctx.requestBytes);
        if (bytesHere) adm = build(ctx, callerBytes, tokens, ctx.requestBytes, adm);
        if (adm === undefined) return;
        const s = stateOf(ctx);
        s.body = adm;
        s.reserved = tokens;
        const done = (err: unknown): void | Promise<void> => {
          const r = refundHeader(s);
          if (r === undefined) throw err;
          return r.then(() => {
            throw err;
          });
        };
        try {
          const r = check(ctx, adm);
          if (r instanceof Promise) return r.catch(done);
        } catch (err) {
          return done(err);
        }
      },
      onResponseHeaders(ctx: RequestContext): void {
        const s = ctx.get(slot);
        if (s === undefined) return;
        const views = s.headerViews;
        if (views !== undefined)
          for (let i = 0; i < views.length; i += 4)
            pushRateHeaders(ctx.out.setHeaders, UNITS[views[i]!]!, views[i + 1]!, views[i + 2]!, views[i + 3]!);
        // Token limits settle from usage: have the response read for it even without metering.usage.
        if (s.body?.levels.some((l) => l.unit === 'tokens')) ctx.readResponseBody();
      },
      onEnd(ctx: RequestContext): void | Promise<void> {
        const s = ctx.get(slot);
        const b = s?.body;
        if (b?.admittedIn === undefined) return;
        // What the request really took: nothing if it never went upstream or upstream failed
        // without usage; its usage when reported; else its reservation stands.
        const reserved = s!.reserved;
        let actual = reserved;
        if (ctx.usage !== undefined) actual = ctx.usage.totalTokens;
        else if (ctx.requestReleasedNs === undefined || ctx.status === undefined || ctx.status >= 400) actual = 0;
        const tokenIdx: number[] = [];
        for (let i = 0; i < b.items.length; i++) if (b.levels[i]!.unit === 'tokens') tokenIdx.push(i);
        if (tokenIdx.length === 0) return;
        for (const i of tokenIdx) {
          const c = ctx.limits?.[b.auditAt + i];
          if (c !== undefined) c.settled = actual;
        }
        if (actual === reserved) return;
        const items = tokenIdx.map((i) => b.items[i]!);
        const r = backend.adjust(
          b.admittedIn,
          items,
          items.map(() => actual - reserved),
        );
        if (r instanceof Promise) return r.then(() => {});
      },
    };
  },
});
