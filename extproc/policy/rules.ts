// policy.rules compiled once per config snapshot: each rule becomes a list of checks (its `from`
// and `to` fields as matchers, its `when` as a compiled CEL program), split by when they can be
// decided: at request headers (who calls, which endpoint, the time) or once the body is in (the
// model, the body's fields, data classes, the route). Rules are indexed by endpoint: the API kinds
// are a closed set, so which rules can apply to one is known at load and a request only walks
// those.
import type { Environment } from '@marcbachmann/cel-js';
import { type CompiledCondition, celVariables, compileCondition } from './cel.ts';
import type { RuleConfig } from './config.ts';
import { RULE_ENDPOINTS } from './endpoints.ts';
import type { PolicyInput } from './input.ts';
import { compileModelPatterns } from './model-names.ts';
import { compilePatterns, type Matcher } from './patterns.ts';

/** One part of a rule: `from.tenants`, `to.models`, `when`. */
export interface Check {
  readonly part: string;
  readonly body: boolean;
  /** true: this part matches. */
  test(input: PolicyInput): boolean;
  /** For explain: what the request had that this part looked at. */
  saw(input: PolicyInput): string;
}

export interface CompiledRule {
  readonly id: string;
  /** policy.rules.<id>: what 403s, the audit and metrics name. */
  readonly ruleId: string;
  readonly action: 'allow' | 'deny';
  readonly checks: readonly Check[];
  /** Some check needs the body. */
  readonly body: boolean;
  readonly when: CompiledCondition | undefined;
}

function listCheck(
  part: string,
  patterns: readonly string[] | undefined,
  body: boolean,
  value: (input: PolicyInput) => string | undefined,
  compile: (patterns: readonly string[]) => Matcher = compilePatterns,
): Check | undefined {
  if (patterns === undefined) return undefined;
  const match: Matcher = compile(patterns);
  return {
    part,
    body,
    test: (input) => {
      const v = value(input);
      return v !== undefined && match(v);
    },
    saw: (input) => JSON.stringify(value(input) ?? null),
  };
}

function rolesCheck(patterns: readonly string[] | undefined): Check | undefined {
  if (patterns === undefined) return undefined;
  const match = compilePatterns(patterns);
  return {
    part: 'from.roles',
    body: false,
    test: (input) => {
      const roles = input.principal.roles;
      for (let i = 0; i < roles.length; i++) if (match(roles[i]!)) return true;
      return false;
    },
    saw: (input) => JSON.stringify(input.principal.roles),
  };
}

export function compileRule(rule: RuleConfig, env: Environment): CompiledRule {
  const when = rule.when === undefined ? undefined : compileCondition(env, rule.when);
  const { from, to } = rule;
  const checks = [
    // Cheapest and most selective first: a rule most requests miss is left at its first check.
    listCheck('to.endpoints', to?.endpoints, false, (i) => i.request.endpoint),
    listCheck('from.tenants', from?.tenants, false, (i) => i.principal.tenant),
    listCheck('from.principals', from?.principals, false, (i) => i.principal.id),
    listCheck('from.teams', from?.teams, false, (i) => i.principal.team),
    rolesCheck(from?.roles),
    listCheck('from.issuers', from?.issuers, false, (i) => i.principal.issuer),
    listCheck('from.methods', from?.methods, false, (i) => i.principal.method),
    // Every spelling of a model its server resolves to it (model-names.ts).
    listCheck('to.models', to?.models, true, (i) => i.request.model, compileModelPatterns),
    listCheck('to.routes', to?.routes, true, (i) => i.route?.name),
    when && {
      part: 'when',
      body: when.readsBody,
      test: (input: PolicyInput) => when.evaluate(celVariables(input)),
      saw: () => when.source,
    },
  ].filter((c): c is Check => c !== undefined);
  return {
    id: rule.id,
    ruleId: `policy.rules.${rule.id}`,
    action: rule.action === 'ALLOW' ? 'allow' : 'deny',
    checks,
    body: checks.some((c) => c.body),
    when,
  };
}

/** The rules that can apply to each endpoint, DENY and ALLOW apart, in config order. */
export interface RuleIndex {
  readonly all: readonly CompiledRule[];
  readonly byEndpoint: ReadonlyMap<string, { deny: readonly CompiledRule[]; allow: readonly CompiledRule[] }>;
}

export function indexRules(rules: readonly CompiledRule[], configs: readonly RuleConfig[]): RuleIndex {
  const byEndpoint = new Map<string, { deny: CompiledRule[]; allow: CompiledRule[] }>();
  for (const endpoint of RULE_ENDPOINTS) {
    const entry = { deny: [] as CompiledRule[], allow: [] as CompiledRule[] };
    rules.forEach((r, i) => {
      const endpoints = configs[i]!.to?.endpoints;
      if (endpoints !== undefined && !compilePatterns(endpoints)(endpoint)) return;
      (r.action === 'deny' ? entry.deny : entry.allow).push(r);
    });
    byEndpoint.set(endpoint, entry);
  }
  return { all: rules, byEndpoint };
}
