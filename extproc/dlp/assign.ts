// Which DLP policy a request gets: dlp.assign, an ordered list of caller patterns (the shape of
// policy.rules' `from`), first match wins, else dlp.defaultPolicy. Compiled once per config
// snapshot (dlp/picker.ts) into one function of the principal, so a request pays a few matcher
// calls.
import { z } from 'zod';
import { ruleFrom } from '../policy/config.ts';
import { PRINCIPAL_METHODS } from '../policy/endpoints.ts';
import { compilePatterns } from '../policy/patterns.ts';

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
