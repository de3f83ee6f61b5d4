// `lm-gate policy test FILE`: a table of expected decisions, run through the evaluator the gate
// uses, as `opa test` runs a policy's tests; a policy change is then reviewed like code, with its
// table. Every row names a caller (a principal, or an API key of the config), a request and the
// expected effect, and may name the rule that must decide.
//
//   cases:
//     - name: interns may not ask for long generations
//       principal: {id: u1, tenant: acme, roles: [intern]}
//       request: {endpoint: openai.chat, model: llama-3.1-8b, max_tokens: 8000}
//       expect: deny
//       rule: no-long-generations      # policy.rules.<id>, or any rule id in full
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatPath } from '../config/issues.ts';
import type { Config } from '../config/schema.ts';
import type { Principal } from '../pipeline/context.ts';
import {
  DescriptionError,
  keyPrincipal,
  parsePrincipal,
  parseRequest,
  principalDescription,
  type ResolvedRequest,
  requestDescription,
} from './describe.ts';
import { type ExplainContext, type Explanation, explain } from './explain.ts';

const caseSchema = z
  .object({
    name: z.string().min(1),
    principal: principalDescription.optional(),
    key_id: z.string().min(1).optional(),
    request: requestDescription,
    expect: z.enum(['allow', 'deny']),
    rule: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => (c.principal === undefined) !== (c.key_id === undefined), {
    message: 'give the caller as principal or as key_id (one of them)',
  });

const tableSchema = z.object({ cases: z.array(caseSchema).min(1) }).strict();

export type TestCase = z.infer<typeof caseSchema>;

export interface ResolvedCase {
  name: string;
  principal: Principal;
  request: ResolvedRequest;
  expect: 'allow' | 'deny';
  rule: string | undefined;
}

/** A table that cannot run: every problem, one line each, with the file's name. */
export class TableError extends Error {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'));
    this.name = 'TableError';
    this.problems = problems;
  }
}

export function parseTable(text: string, file: string, config: Config): ResolvedCase[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0)
    throw new TableError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return `${line}:${col}: ${e.message}`;
      }),
    );
  const parsed = tableSchema.safeParse(doc.toJS());
  if (!parsed.success)
    throw new TableError(
      file,
      parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    );
  const problems: string[] = [];
  const cases: ResolvedCase[] = [];
  parsed.data.cases.forEach((c, i) => {
    try {
      cases.push({
        name: c.name,
        principal: c.key_id !== undefined ? keyPrincipal(config, c.key_id) : parsePrincipal(c.principal),
        request: parseRequest(c.request),
        expect: c.expect,
        rule: c.rule,
      });
    } catch (err) {
      if (!(err instanceof DescriptionError)) throw err;
      problems.push(`cases[${i}] (${c.name}): ${err.message}`);
    }
  });
  if (problems.length > 0) throw new TableError(file, problems);
  return cases;
}

/** Whether `actual` is the rule `expected` names: its full id, or a policy.rules id by the
 * rule's own id. */
export function sameRule(expected: string, actual: string | undefined): boolean {
  return actual === expected || actual === `policy.rules.${expected}`;
}

export interface CaseResult {
  case: ResolvedCase;
  explanation: Explanation;
  /** Why it failed, or undefined when it passed. */
  failure: string | undefined;
}

export async function runTable(ctx: ExplainContext, cases: readonly ResolvedCase[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const e = await explain(ctx, c.principal, c.request);
    const got = e.decidedBy?.ruleId;
    let failure: string | undefined;
    if (e.effect !== c.expect || (c.rule !== undefined && !sameRule(c.rule, got))) {
      const want = `${c.expect}${c.rule !== undefined ? ` by ${c.rule}` : ''}`;
      failure = `expected ${want}, got ${e.effect}${got !== undefined ? ` by ${got}` : ''}`;
    }
    results.push({ case: c, explanation: e, failure });
  }
  return results;
}
