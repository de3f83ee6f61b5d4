// The policy evaluator: tenant isolation, DENY rules, ALLOW rules, the default and OPA, over one
// PolicyInput. The policy.rules stage, `lm-gate policy explain` and `lm-gate policy test` all call
// it (the credential scope before it is scope.ts, also shared), so the gate and the CLI cannot
// disagree.
//
// Order: a model another tenant owns is denied first; then any DENY rule that matches denies;
// then the first ALLOW rule that matches admits; with rules configured and none matching, the
// default denies (policy.default). With no rules configured, nothing here admits or refuses but
// isolation and OPA. OPA is asked only about requests the local policy admitted (both must allow).
//
// Phases: at request headers only some facts are known. decideAtHeaders() decides when the
// rules that could still match do not read the body: a header-only DENY that matches denies at
// once, and when no ALLOW rule can match, the default denies at once (so an endpoint denial never
// waits for an upload). Otherwise it answers PENDING, and decideFinal() decides with the body's
// facts in. Both run the same rule tests.
import type { Environment } from '@marcbachmann/cel-js';
import type { Config } from '../config/schema.ts';
import { celEnvironment } from './cel.ts';
import type { PolicyInput } from './input.ts';
import { compileModelPatterns } from './model-names.ts';
import { createOpaClient, type OpaClient } from './opa.ts';
import type { Matcher } from './patterns.ts';
import { type CompiledRule, compileRule, indexRules, type RuleIndex } from './rules.ts';
import { allow, deny, type Verdict } from './verdict.ts';

const STAGE = 'policy.rules';

/** The local policy cannot decide before the body is in. */
export const PENDING = 'pending' as const;
/** No local rule is configured: the local policy neither admits nor refuses. */
export const NO_RULES = 'no_rules' as const;
export type LocalResult = Verdict | typeof PENDING | typeof NO_RULES;

export const DEFAULT_RULE_ID = 'policy.default';

/** How a rule fared, for explain. */
export interface RuleNote {
  result: 'match' | 'no_match' | 'pending' | 'error';
  /** The part that did not match, was not decidable yet, or failed. */
  part?: string;
  /** What the request had there, or the condition's error. */
  detail?: string;
}

const Outcome = { NoMatch: 0, Match: 1, Pending: 2 } as const;
type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** One rule against the input. `headersOnly`: leave the body's checks for later (PENDING when the
 * rest matched). A check that throws (a condition reading a missing key) fails closed: a DENY rule
 * matches, an ALLOW rule does not. */
function testRule(rule: CompiledRule, input: PolicyInput, headersOnly: boolean, note?: RuleNote): Outcome {
  let pending = false;
  const checks = rule.checks;
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]!;
    if (headersOnly && c.body) {
      if (note && !pending) Object.assign(note, { part: c.part, detail: 'needs the request body' });
      pending = true;
      continue;
    }
    let ok: boolean;
    try {
      ok = c.test(input);
    } catch (err) {
      if (note) Object.assign(note, { result: 'error', part: c.part, detail: (err as Error).message.split('\n')[0] });
      return rule.action === 'deny' ? Outcome.Match : Outcome.NoMatch;
    }
    if (!ok) {
      if (note) {
        note.result = 'no_match';
        note.part = c.part;
        note.detail = c.part === 'when' ? 'false' : c.saw(input);
      }
      return Outcome.NoMatch;
    }
  }
  if (pending) {
    if (note) note.result = 'pending';
    return Outcome.Pending;
  }
  if (note) {
    note.result = 'match';
    note.part = undefined;
    note.detail = undefined;
  }
  return Outcome.Match;
}

export interface IsolationEntry {
  readonly tenant: string;
  readonly ruleId: string;
  readonly owns: Matcher;
}

export class PolicyEngine {
  /** Rules, isolation or OPA configured: the policy.rules stage has work. */
  readonly active: boolean;
  readonly rules: RuleIndex;
  readonly isolation: readonly IsolationEntry[];
  readonly opa: OpaClient | undefined;
  readonly timeZone: string;

  constructor(config: Config) {
    const policy = config.policy;
    this.timeZone = policy.timeZone;
    const env: Environment | undefined = policy.rules.length > 0 ? celEnvironment(policy.timeZone) : undefined;
    const compiled = policy.rules.map((r) => compileRule(r, env!));
    this.rules = indexRules(compiled, policy.rules);
    this.isolation = Object.entries(policy.tenantModels ?? {}).map(([tenant, models]) => ({
      tenant,
      ruleId: `policy.tenantIsolation.${tenant}`,
      owns: compileModelPatterns(models),
    }));
    this.opa = policy.opa === undefined ? undefined : createOpaClient(policy.opa);
    this.active = compiled.length > 0 || this.isolation.length > 0 || this.opa !== undefined;
  }

  /** The local decision at request headers. `bodyFollows`: the stages will see the body (an LLM
   * call with one); without it every fact is in, and this is the final decision. */
  decideAtHeaders(input: PolicyInput, bodyFollows: boolean): LocalResult {
    if (!bodyFollows) return this.decideFinal(input);
    const idx = this.rules.byEndpoint.get(input.request.endpoint)!;
    // A model another tenant owns is only known with the body.
    let denyPending = this.isolation.length > 0;
    for (const rule of idx.deny) {
      const o = testRule(rule, input, true);
      if (o === Outcome.Match) return this.denyBy(rule);
      if (o === Outcome.Pending) denyPending = true;
    }
    if (this.rules.all.length === 0) return denyPending ? PENDING : NO_RULES;
    let allowPending = false;
    let allowed: CompiledRule | undefined;
    for (const rule of idx.allow) {
      const o = testRule(rule, input, true);
      if (o === Outcome.Match) {
        allowed = rule;
        break;
      }
      if (o === Outcome.Pending) allowPending = true;
    }
    // No ALLOW rule can match whatever the body says: denied now, whatever a pending DENY
    // would have said.
    if (allowed === undefined && !allowPending) return this.defaultDeny();
    if (denyPending || allowed === undefined) return PENDING;
    return this.allowBy(allowed);
  }

  /** The local decision with every fact in. */
  decideFinal(input: PolicyInput): Verdict | typeof NO_RULES {
    const model = input.request.model;
    if (model !== undefined) {
      for (const iso of this.isolation) {
        if (iso.tenant !== input.principal.tenant && iso.owns(model))
          return deny(
            STAGE,
            iso.ruleId,
            `model owned by tenant ${iso.tenant}`,
            'policy_denied',
            `Model "${model}" belongs to another tenant.`,
          );
      }
    }
    const idx = this.rules.byEndpoint.get(input.request.endpoint)!;
    for (const rule of idx.deny) if (testRule(rule, input, false) === Outcome.Match) return this.denyBy(rule);
    if (this.rules.all.length === 0)
      return this.isolation.length > 0 ? allow(STAGE, 'policy.tenantIsolation', "no other tenant's model") : NO_RULES;
    for (const rule of idx.allow) if (testRule(rule, input, false) === Outcome.Match) return this.allowBy(rule);
    return this.defaultDeny();
  }

  /** For explain: every rule, tested with every fact (not only the ones it indexes). */
  noteRules(input: PolicyInput): { rule: CompiledRule; note: RuleNote }[] {
    return this.rules.all.map((rule) => {
      const note: RuleNote = { result: 'no_match' };
      testRule(rule, input, false, note);
      return { rule, note };
    });
  }

  private denyBy(rule: CompiledRule): Verdict {
    return deny(
      STAGE,
      rule.ruleId,
      `DENY rule ${rule.id} matched`,
      'policy_denied',
      `Denied by policy rule "${rule.id}".`,
    );
  }

  private allowBy(rule: CompiledRule): Verdict {
    return allow(STAGE, rule.ruleId, `ALLOW rule ${rule.id} matched`);
  }

  private defaultDeny(): Verdict {
    return deny(
      STAGE,
      DEFAULT_RULE_ID,
      'no ALLOW rule matched',
      'policy_denied',
      'No policy rule allows this request.',
    );
  }
}
