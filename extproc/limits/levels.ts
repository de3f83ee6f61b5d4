// Which counters a request meets: each configured limit or budget compiled once per config
// snapshot, and the subject (key, user, team, tenant, model, route) it counts for a request.
//
// Key names: <prefix>lim:{<tag>}:<limit id>:<unit>:<subject>. The hash tag is the tenant for the
// caller's levels (key, user, team, tenant), so one request's levels share a Redis Cluster slot;
// model and route limits count across tenants and carry their own tag ({m:<model>},
// {r:<route>}).
import type { RequestContext } from '../pipeline/context.ts';

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
      return ctx.modelRequested;
    case 'route':
      return ctx.route?.name;
  }
}

export const CALLER_SCOPES: ReadonlySet<Scope> = new Set(['key', 'user', 'team', 'tenant']);

/** The Redis key (also the memory store's key) of one counter. */
export function counterKey(
  prefix: string,
  ctx: RequestContext,
  scope: Scope,
  subject: string,
  id: string,
  unit: string,
): string {
  const tag = CALLER_SCOPES.has(scope) ? `t:${ctx.principal?.tenant ?? ''}` : `${scope[0]}:${subject}`;
  return `${prefix}lim:{${tag}}:${id}:${unit}:${scope}:${subject}`;
}

/** Applies to this subject: every subject, or the ones listed. */
export function matches(ids: ReadonlySet<string> | undefined, subject: string): boolean {
  return ids === undefined || ids.has(subject);
}

/** Maybe-async composition without a promise when `v` is not one: the memory store's path
 * stays synchronous. */
export function andThen<T, R>(v: T | Promise<T>, f: (t: T) => R): R | Promise<Awaited<R>> {
  return v instanceof Promise ? (v.then(f) as Promise<Awaited<R>>) : f(v);
}
