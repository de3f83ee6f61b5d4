// Counter names: the key format Redis and the memory store count under (a change would reset every
// counter on upgrade), and the names kept per tenant and subject never crossing tenants or periods.
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../pipeline/context.ts';
import { CounterNames } from './levels.ts';

/** What CounterNames reads of a request: the caller's tenant. */
const ctxOf = (tenant: string): RequestContext => ({ principal: { tenant } }) as RequestContext;

describe('CounterNames', () => {
  it.each([
    ['key', 'per-key', 'r', 'k1', '', 'lmgate:lim:{t:acme}:per-key:r:key:k1', 'key:k1'],
    ['team', 'team-tokens', 't', 'research', '', 'lmgate:lim:{t:acme}:team-tokens:t:team:research', 'team:research'],
    ['tenant', 'upload', 'b', 'acme', '', 'lmgate:lim:{t:acme}:upload:b:tenant:acme', 'tenant:acme'],
    [
      'model',
      'per-model',
      'r',
      'llama-3.1-8b',
      '',
      'lmgate:lim:{m:llama-3.1-8b}:per-model:r:model:llama-3.1-8b',
      'model:llama-3.1-8b',
    ],
    [
      'tenant',
      'monthly',
      'b',
      'acme',
      '2026-11-01',
      'lmgate:lim:{t:acme}:monthly:b:2026-11-01:tenant:acme',
      'tenant:acme',
    ],
  ] as const)('%s limit %s: key and level', (scope, id, unit, subject, period, key, level) => {
    const names = new CounterNames('lmgate:', scope, id, unit);
    const n = names.of(ctxOf('acme'), subject, period);
    expect(n).toMatchObject({ subject, key, level });
    // Kept: the same strings for the next request of the same caller.
    expect(names.of(ctxOf('acme'), subject, period)).toBe(n);
  });

  it('a team of the same name in two tenants counts apart', () => {
    const names = new CounterNames('p:', 'team', 'per-team', 'r');
    const acme = names.of(ctxOf('acme'), 'research');
    const globex = names.of(ctxOf('globex'), 'research');
    expect(acme.key).toBe('p:lim:{t:acme}:per-team:r:team:research');
    expect(globex.key).toBe('p:lim:{t:globex}:per-team:r:team:research');
    expect(names.of(ctxOf('acme'), 'research')).toBe(acme);
    expect(names.of(ctxOf('globex'), 'research')).toBe(globex);
  });

  it("a budget's new period gets a new key", () => {
    const names = new CounterNames('p:', 'tenant', 'monthly', 'b');
    const nov = names.of(ctxOf('acme'), 'acme', '2026-11-01');
    const dec = names.of(ctxOf('acme'), 'acme', '2026-12-01');
    expect(nov.key).toBe('p:lim:{t:acme}:monthly:b:2026-11-01:tenant:acme');
    expect(dec.key).toBe('p:lim:{t:acme}:monthly:b:2026-12-01:tenant:acme');
    expect(names.of(ctxOf('acme'), 'acme', '2026-12-01')).toBe(dec);
  });

  it('a long subject is named for the request, not kept; many subjects start the cache over', () => {
    const names = new CounterNames('p:', 'model', 'per-model', 'r');
    const long = 'm'.repeat(300);
    const a = names.of(ctxOf('acme'), long);
    expect(a.key).toBe(`p:lim:{m:${long}}:per-model:r:model:${long}`);
    expect(names.of(ctxOf('acme'), long)).not.toBe(a);
    const first = names.of(ctxOf('acme'), 'model-0');
    for (let i = 1; i <= 4096; i++) names.of(ctxOf('acme'), `model-${i}`);
    // Past 4096 names the cache started over: model-0 is built anew, with the same key.
    const again = names.of(ctxOf('acme'), 'model-0');
    expect(again).not.toBe(first);
    expect(again.key).toBe(first.key);
  });
});
