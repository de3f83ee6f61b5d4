// dlp.assign compiled, once per config snapshot, into one function of the principal: first
// matching entry wins, else dlp.defaultPolicy. Apart from the entry's zod schema (dlp/assign.ts),
// so the serving gate never loads zod.
import type { Principal } from '../pipeline/context.ts';
import { compilePatterns, type Matcher } from '../policy/patterns.ts';
import type { DlpAssignment } from './assign.ts';

type Test = (p: Principal) => boolean;

function compileFrom(from: DlpAssignment['from']): Test {
  const tests: Test[] = [];
  if (from === undefined) return () => true;
  const one = (list: readonly string[] | undefined, get: (p: Principal) => string | undefined) => {
    if (list === undefined) return;
    const m: Matcher = compilePatterns(list);
    tests.push((p) => {
      const v = get(p);
      return v !== undefined && m(v);
    });
  };
  one(from.principals, (p) => p.id);
  one(from.tenants, (p) => p.tenant);
  one(from.teams, (p) => p.team);
  one(from.issuers, (p) => p.issuer);
  one(from.methods, (p) => p.method);
  if (from.roles !== undefined) {
    const m = compilePatterns(from.roles);
    tests.push((p) => p.roles.some(m));
  }
  return (p) => tests.every((t) => t(p));
}

/** The policy name for a caller; the default when no entry matches or nobody was identified. */
export type PolicyPicker = (principal: Principal | undefined) => string;

export function compileAssignment(assign: readonly DlpAssignment[], defaultPolicy: string): PolicyPicker {
  if (assign.length === 0) return () => defaultPolicy;
  const entries = assign.map((a) => ({ test: compileFrom(a.from), policy: a.policy }));
  return (principal) => {
    if (principal === undefined) return defaultPolicy;
    for (const e of entries) if (e.test(principal)) return e.policy;
    return defaultPolicy;
  };
}
