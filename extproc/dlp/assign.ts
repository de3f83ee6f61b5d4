// Which DLP policy a request gets: dlp.assign, an ordered list of caller patterns (the shape of
// policy.rules' `from`), first match wins, else dlp.defaultPolicy. Compiled once per config
// snapshot into one function of the principal, so a request pays a few matcher calls.
import { z } from 'zod';
import type { Principal } from '../pipeline/context.ts';
import { PRINCIPAL_METHODS, ruleFrom } from '../policy/config.ts';
import { compilePatterns, type Matcher } from '../policy/patterns.ts';

export const dlpAssignment = z
  .object({
    from: ruleFrom.describe(
      'Which callers get the policy. Each field is a list of patterns (* matches any run of characters), any of which may match; every field set must match. Unset: every identified caller. An unauthenticated request (no identity stage) matches no entry.',
    ),
    policy: z
      .string()
      .min(1)
      .describe('The name of a policy in dlp.policies.')
      .meta({ examples: ['default'] }),
  })
  .strict();

export type DlpAssignment = z.output<typeof dlpAssignment>;

/** Config problems of the list: unknown policy names, method patterns that match no method. */
export function assignmentProblems(
  assign: readonly DlpAssignment[],
  policyNames: ReadonlySet<string>,
): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  assign.forEach((a, i) => {
    if (!policyNames.has(a.policy))
      out.push({ path: ['assign', i, 'policy'], message: `no policy is named "${a.policy}"` });
    a.from?.methods?.forEach((p, j) => {
      if (!PRINCIPAL_METHODS.some(compilePatterns([p])))
        out.push({
          path: ['assign', i, 'from', 'methods', j],
          message: `"${p}" matches none of ${PRINCIPAL_METHODS.join(', ')}`,
        });
    });
  });
  return out;
}

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
