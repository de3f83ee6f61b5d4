// Which counters a request meets: each configured limit or budget compiled once per config
// snapshot, and the subject (key, user, team, tenant, model, route) it counts for a request.
//
// Key names: <prefix>lim:{<tag>}:<limit id>:<unit>:<scope>:<subject>. The hash tag is the tenant
// for the caller's levels (key, user, team, tenant), so one request's levels share a Redis Cluster
// slot; model and route limits count across tenants and carry their own tag ({m:<model>},
// {r:<route>}). A budget's unit carries its period ("b:2026-11-01").
import type { RequestContext } from '../pipeline/context.ts';
import { modelKey } from '../policy/model-names.ts';

export type Scope = 'key' | 'user' | 'team' | 'tenant' | 'model' | 'route';

export function subjectOf(ctx: RequestContext, scope: Scope): string | undefined {
  const p = ctx.principal;
  switch (scope) {
    case 'key':
      return p?.id;
    case 'user':
      return p?.user;
    case 'team':
      return p?.team;
    case 'tenant':
      return p?.tenant;
    case 'model':
      // Counted by key: every spelling of a model its server resolves to it is one counter.
      return ctx.modelRequested === undefined ? undefined : modelKey(ctx.modelRequested);
    case 'route':
      return ctx.route?.name;
  }
}

export const CALLER_SCOPES: ReadonlySet<Scope> = new Set(['key', 'user', 'team', 'tenant']);

/** One counter's names: its store key (Redis key name, memory map key) and its audit level
 * (`<scope>:<subject>`, the audit's `limits[].level` and `budgets[].level`). */
export interface CounterName {
  readonly subject: string;
  readonly key: string;
  readonly level: string;
}

interface NameEntry extends CounterName {
  /** A budget's period label, which its key carries ('' for a rate limit). */
  readonly period: string;
}

/** Names one limit keeps; past it the cache starts over (each subject then builds its strings
 * once more, nothing else). */
const MAX_NAMES = 4096;
/** Longer subjects or tenants (a model name is the client's) are named per request, never kept. */
const MAX_KEPT_LENGTH = 256;

/** The names of one limit's counters, kept per tenant and subject, so a caller's requests share
 * the same strings instead of building them. The audit and the settlement read them when the
 * request ends: built per request, they lived through it, copied by every scavenge meanwhile
 * (bench:alloc --survivors). */
export class CounterNames {
  /** By tenant (the caller levels' hash tag; '' for model and route levels), then subject. */
  private readonly byTenant = new Map<string, Map<string, NameEntry>>();
  private size = 0;
  private readonly prefix: string;
  private readonly scope: Scope;
  private readonly id: string;
  private readonly unit: string;
  private readonly caller: boolean;

  /** `unit`: the key's unit letter (r, t or b for a rate limit; b for a budget, whose key adds
   * its period). */
  constructor(prefix: string, scope: Scope, id: string, unit: string) {
    this.prefix = prefix;
    this.scope = scope;
    this.id = id;
    this.unit = unit;
    this.caller = CALLER_SCOPES.has(scope);
  }

  /** The names for `subject` (subjectOf this limit's scope) in this request; `period`: a
   * budget's period label, '' for a rate limit. */
  of(ctx: RequestContext, subject: string, period = ''): CounterName {
    const tenant = this.caller ? (ctx.principal?.tenant ?? '') : '';
    let bySubject = this.byTenant.get(tenant);
    const kept = bySubject?.get(subject);
    if (kept !== undefined && kept.period === period) return kept;
    const tag = this.caller ? `t:${tenant}` : `${this.scope[0]}:${subject}`;
    const unit = period === '' ? this.unit : `${this.unit}:${period}`;
    const named: NameEntry = {
      subject,
      key: `${this.prefix}lim:{${tag}}:${this.id}:${unit}:${this.scope}:${subject}`,
      level: `${this.scope}:${subject}`,
      period,
    };
    if (subject.length > MAX_KEPT_LENGTH || tenant.length > MAX_KEPT_LENGTH) return named;
    if (kept === undefined && this.size >= MAX_NAMES) {
      this.byTenant.clear();
      this.size = 0;
      bySubject = undefined;
    }
    if (bySubject === undefined) {
      bySubject = new Map();
      this.byTenant.set(tenant, bySubject);
    }
    if (kept === undefined) this.size++;
    bySubject.set(subject, named);
    return named;
  }
}

/** Applies to this subject: every subject, or the ones listed. */
/** Output tokens a request may take, for a reservation: what it asks for, for each completion
 * it asks for (n, best_of); unset, or negative (Ollama's num_predict -1: no limit), the
 * configured default. Embeddings take none. */
export function outputAsked(ctx: RequestContext, defaultMaxTokens: number): number {
  if (ctx.api === 'openai.embeddings' || ctx.api === 'ollama.embed') return 0;
  const asked = ctx.parsed?.maxTokens;
  const each = asked !== undefined && asked >= 0 ? asked : defaultMaxTokens;
  return each * (ctx.parsed?.generations ?? 1);
}

/** A limit's `ids` as subjects are named: a model scope's by key (model-names.ts). */
export function idSet(scope: Scope, ids: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (ids === undefined) return undefined;
  return new Set(scope === 'model' ? ids.map(modelKey) : ids);
}

export function matches(ids: ReadonlySet<string> | undefined, subject: string): boolean {
  return ids === undefined || ids.has(subject);
}

/** Maybe-async composition without a promise when `v` is not one: the memory store's path
 * stays synchronous. */
export function andThen<T, R>(v: T | Promise<T>, f: (t: T) => R): R | Promise<Awaited<R>> {
  return v instanceof Promise ? (v.then(f) as Promise<Awaited<R>>) : f(v);
}
