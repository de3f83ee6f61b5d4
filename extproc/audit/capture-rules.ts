// audit.capture.rules compiled once per config snapshot into one function: the first rule whose
// from and to match the request decides whether, and what, is captured. Patterns match as in
// policy.rules (patterns.ts): every field set must match, any pattern of a field may; a fact the
// request lacks (no team, no route, no caller at all) matches no pattern.
import type { Principal } from '../pipeline/context.ts';
import { compileModelPatterns } from '../policy/model-names.ts';
import { compilePatterns, type Matcher } from '../policy/patterns.ts';
import type { CaptureRuleConfig } from './capture-config.ts';

/** What a capture rule looks at. */
export interface CaptureFacts {
  principal: Principal | undefined;
  /** The API kind (openai.chat, …): to.endpoints. */
  endpoint: string;
  /** The model the request asks upstream for: to.models. */
  model: string | undefined;
  /** The route chosen: to.routes. */
  route: string | undefined;
}

/** What a matched rule keeps. */
export interface CaptureChoice {
  readonly rule: string;
  readonly prompt: boolean;
  readonly response: boolean;
  readonly maxChars: number;
}

type Test = (f: CaptureFacts) => boolean;

function list(
  patterns: readonly string[] | undefined,
  value: (f: CaptureFacts) => string | undefined,
  compile: (patterns: readonly string[]) => Matcher = compilePatterns,
): Test | undefined {
  if (patterns === undefined) return undefined;
  const match: Matcher = compile(patterns);
  return (f) => {
    const v = value(f);
    return v !== undefined && match(v);
  };
}

function roles(patterns: readonly string[] | undefined): Test | undefined {
  if (patterns === undefined) return undefined;
  const match = compilePatterns(patterns);
  return (f) => f.principal?.roles.some(match) === true;
}

function compileRule(rule: CaptureRuleConfig): { tests: Test[]; choice: CaptureChoice } {
  const { from, to } = rule;
  const tests = [
    list(to?.endpoints, (f) => f.endpoint),
    list(from?.tenants, (f) => f.principal?.tenant),
    list(from?.principals, (f) => f.principal?.id),
    list(from?.teams, (f) => f.principal?.team),
    roles(from?.roles),
    list(from?.issuers, (f) => f.principal?.issuer),
    list(from?.methods, (f) => f.principal?.method),
    list(to?.models, (f) => f.model, compileModelPatterns),
    list(to?.routes, (f) => f.route),
  ].filter((t): t is Test => t !== undefined);
  return {
    tests,
    choice: { rule: rule.id, prompt: rule.prompt, response: rule.response, maxChars: rule.maxChars },
  };
}

/** The first matching rule's choice, or undefined: nothing captured. A rule that keeps neither
 * direction still ends the search (it says "not these"). */
export type CaptureMatcher = (facts: CaptureFacts) => CaptureChoice | undefined;

export function compileCaptureRules(rules: readonly CaptureRuleConfig[]): CaptureMatcher | undefined {
  if (rules.length === 0) return undefined;
  const compiled = rules.map(compileRule);
  return (facts) => {
    for (const r of compiled) if (r.tests.every((t) => t(facts))) return r.choice;
    return undefined;
  };
}
