// `lm-gate policy explain` and `policy test`: one request judged the way the gate judges it, phase
// by phase (policy.access then policy.rules at request headers; again at the body when one
// follows; OPA last), with the same functions (scope.ts, engine.ts, opa.ts), and a listing of
// every rule considered: whether it matched, and if not which part did not.
import { apiSpec } from '../llm/apis.ts';
import type { Principal } from '../pipeline/context.ts';
import type { RoutingTable } from '../routing/table.ts';
import { GENERATES } from './cel.ts';
import type { ResolvedRequest } from './describe.ts';
import { DEFAULT_RULE_ID, NO_RULES, PENDING, type PolicyEngine, type RuleNote } from './engine.ts';
import type { PolicyInput } from './input.ts';
import { scopeAtBody, scopeAtHeaders } from './scope.ts';
import type { Verdict } from './verdict.ts';

export interface ExplainStep {
  kind: 'route' | 'scope' | 'isolation' | 'rule' | 'default' | 'opa';
  ruleId: string;
  /** DENY or ALLOW for rules. */
  action?: 'ALLOW' | 'DENY';
  result: 'match' | 'no_match' | 'pending' | 'error' | 'allow' | 'deny' | 'not_asked' | 'not_applied';
  detail: string;
  decided: boolean;
}

export interface Explanation {
  request: ResolvedRequest;
  principal: Principal;
  /** Every verdict recorded, in order, as the audit record would list them. */
  decisions: Verdict[];
  /** What decided: the denial, or for an admitted request the last rule that admitted it (see
   * decidingVerdict). Undefined when nothing had a say (no scope, no rules). */
  decidedBy: Verdict | undefined;
  effect: 'allow' | 'deny';
  /** The phase that settled it. */
  decidedAt: 'request headers' | 'request body';
  steps: ExplainStep[];
}

export interface ExplainContext {
  engine: PolicyEngine;
  /** policy.unknownEndpoints is allow. */
  allowUnknown: boolean;
  /** The stages the config runs: a stage left out decides nothing. */
  stages: ReadonlySet<string>;
  /** The config's routing, when routing.route runs: it resolves aliases and chooses the route the
   * rules then see, as the gate's routing stage does (before the policy stages). */
  routing?: RoutingTable | undefined;
  /** routing.tgiModel: the model a call whose body names none (TGI) is judged as. */
  tgiModel?: string | undefined;
  /** policy.defaultMaxTokens: what llm.api_shape writes into a generating request that sets no
   * output limit (Ollama: or a negative one), so the rules judge that. */
  defaultMaxTokens?: number | undefined;
  now: () => number;
}

/** The request's max_tokens as the rules see it: with policy.defaultMaxTokens, a generating
 * request that sets none (Ollama: or a negative one) carries that limit, as llm.api_shape writes it. */
function withDefault(ctx: ExplainContext, request: ResolvedRequest): number | undefined {
  const asked = request.maxTokens;
  const limit = ctx.defaultMaxTokens;
  if (limit === undefined || !GENERATES.has(request.endpoint)) return asked;
  if (asked === undefined) return limit;
  return asked < 0 && request.endpoint.startsWith('ollama.') ? limit : asked;
}

/** Judges the request as the gate would (OPA included, when configured). */
export async function explain(
  ctx: ExplainContext,
  principal: Principal,
  described: ResolvedRequest,
  signal?: AbortSignal,
): Promise<Explanation> {
  // The request as the rules get it, shown so: with the output limit llm.api_shape would write.
  let request = described.bodyFollows ? { ...described, maxTokens: withDefault(ctx, described) } : described;
  const { engine } = ctx;
  // A body that names no model (TGI) is judged as routing.tgiModel, as llm.api_shape does.
  const unnamed = request.bodyFollows && apiSpec(request.endpoint as never)?.namesModel === false;
  if (unnamed) request = { ...request, model: ctx.tgiModel };
  // Routing runs before the policy stages: the rules judge the model upstream gets and the route
  // it takes. A model no route may take is refused there, before any rule.
  let routeVerdict: Verdict | undefined;
  let routeStep: ExplainStep | undefined;
  if (ctx.routing !== undefined && request.bodyFollows && request.model !== undefined) {
    const r = ctx.routing.resolve(request.model, request.dataClasses, principal.attributes);
    const aliasNote = r.alias === undefined ? '' : `alias ${r.alias} → ${r.model}; `;
    if ('refusal' in r) {
      const ruleId = r.refusal.ruleId ?? 'routing.routes';
      routeVerdict = {
        stage: 'routing.route',
        ruleId,
        effect: 'deny',
        reason: `${aliasNote}${r.refusal.code}`,
        code: r.refusal.code,
        message: r.refusal.message,
      };
      routeStep = { kind: 'route', ruleId, result: 'deny', detail: `${aliasNote}${r.refusal.message}`, decided: true };
    } else {
      request = { ...request, model: r.model, route: r.route?.choice ?? request.route };
      routeStep = {
        kind: 'route',
        ruleId: r.route === undefined ? 'routing' : `routing.routes.${r.route.choice.name}`,
        result: 'allow',
        detail: `${aliasNote}${r.route === undefined ? 'no routes configured' : `route ${r.route.choice.name}`}`,
        decided: false,
      };
    }
  }
  const access = ctx.stages.has('policy.access');
  const rules = ctx.stages.has('policy.rules') && engine.active;
  const nowMs = request.nowMs ?? ctx.now();
  // What the gate knows at request headers: nothing the body or the stages reading it give.
  const input: PolicyInput = {
    principal,
    request: {
      endpoint: request.endpoint,
      model: undefined,
      stream: false,
      maxTokens: undefined,
      path: request.path,
      method: request.method,
    },
    dataClasses: new Set(),
    route: undefined,
    nowMs,
  };
  const decisions: Verdict[] = [];
  let opaVerdict: Verdict | undefined;
  const askOpa = async (): Promise<void> => {
    opaVerdict = await engine.opa!.decide(input, signal);
    record(opaVerdict);
  };
  let decidedAt: Explanation['decidedAt'] = 'request headers';
  const done = (): Explanation => {
    const decidedBy = decidingVerdict(decisions);
    const steps = listSteps(ctx, principal, request, nowMs, decisions, opaVerdict, access, rules);
    return {
      request,
      principal,
      decisions,
      decidedBy,
      effect: decidedBy?.effect ?? 'allow',
      decidedAt,
      steps: routeStep === undefined ? steps : [routeStep, ...steps],
    };
  };
  /** Records a verdict; true when it denied. */
  const record = (v: Verdict | undefined): boolean => {
    if (v === undefined) return false;
    decisions.push(v);
    return v.effect === 'deny';
  };

  // Request headers.
  if (access && record(scopeAtHeaders(principal, request, ctx.allowUnknown))) return done();
  let waiting = false;
  if (rules) {
    const local = engine.decideAtHeaders(input, request.bodyFollows);
    if (local === PENDING) waiting = true;
    else {
      if (local !== NO_RULES && record(local)) return done();
      if (engine.opa !== undefined && !request.bodyFollows) {
        await askOpa();
        return done();
      }
    }
  }
  if (!request.bodyFollows) return done();

  // The body.
  decidedAt = 'request body';
  if (record(routeVerdict)) return done();
  input.request.model = request.model;
  input.request.stream = request.stream;
  input.request.maxTokens = request.maxTokens;
  input.dataClasses = request.dataClasses;
  input.route = request.route;
  input.cel = undefined;
  if (access && record(scopeAtBody(principal, request.model, unnamed))) return done();
  if (rules) {
    if (waiting) {
      const local = engine.decideFinal(input);
      if (local !== NO_RULES && record(local)) return done();
    }
    if (engine.opa !== undefined) await askOpa();
  }
  return done();
}

/** The verdict that decided, among a request's decisions (as explain lists them, or as an audit
 * record lists them): the denial if there is one; else the last gate-wide decision (a rule or
 * OPA, which is what admitted it once the scope allowed it), else the last scope decision. */
export function decidingVerdict<D extends { stage: string; effect: string }>(decisions: readonly D[]): D | undefined {
  const denial = decisions.find((d) => d.effect === 'deny');
  if (denial !== undefined) return denial;
  const policy = decisions.filter((d) => d.stage === 'policy.access' || d.stage === 'policy.rules');
  return policy.findLast((d) => d.stage === 'policy.rules') ?? policy.at(-1);
}

/** Every step the policy has, whether or not it was reached, with the decider marked. */
function listSteps(
  ctx: ExplainContext,
  principal: Principal,
  request: ResolvedRequest,
  nowMs: number,
  decisions: readonly Verdict[],
  opaVerdict: Verdict | undefined,
  access: boolean,
  rules: boolean,
): ExplainStep[] {
  const { engine } = ctx;
  const decider = decidingVerdict(decisions);
  const decided = (ruleId: string) => decider?.ruleId === ruleId;
  const steps: ExplainStep[] = [];
  const scope = principal.scope;
  if (!access) {
    steps.push({
      kind: 'scope',
      ruleId: 'policy.access',
      result: 'not_applied',
      detail: 'stage not in pipeline.stages',
      decided: false,
    });
  } else if (request.endpoint === 'unknown') {
    const v = decisions.find((d) => d.ruleId === 'policy.unknownEndpoints' || d.ruleId.endsWith('.endpoints'));
    steps.push({
      kind: 'scope',
      ruleId: v?.ruleId ?? 'policy.unknownEndpoints',
      result: v ? 'deny' : 'allow',
      detail: v ? v.reason : 'policy.unknownEndpoints is allow, and the credential may call any endpoint',
      decided: v !== undefined && decided(v.ruleId),
    });
  } else if (scope === undefined) {
    steps.push({
      kind: 'scope',
      ruleId: 'policy.access',
      result: 'allow',
      detail: 'the credential carries no scope',
      decided: false,
    });
  } else {
    const endpointsId = `${scope.source}.endpoints`;
    const endpointDenied = decisions.some((d) => d.ruleId === endpointsId);
    steps.push({
      kind: 'scope',
      ruleId: endpointsId,
      result: endpointDenied ? 'deny' : 'allow',
      detail: endpointDenied
        ? `${request.endpoint} is outside the credential's endpoints`
        : `${request.endpoint} is within the credential's endpoints`,
      decided: decided(endpointsId),
    });
    if (request.bodyFollows) {
      const v = decisions.find((d) => d.ruleId === `${scope.source}.models`);
      steps.push({
        kind: 'scope',
        ruleId: `${scope.source}.models`,
        result: v === undefined ? 'not_asked' : v.effect,
        detail: v === undefined ? 'not reached' : `${v.reason}: ${request.model}`,
        decided: decided(`${scope.source}.models`),
      });
    }
  }
  if (!rules) {
    steps.push({
      kind: 'rule',
      ruleId: 'policy.rules',
      result: 'not_applied',
      detail: engine.active ? 'stage not in pipeline.stages' : 'no rules, tenantModels or opa configured',
      decided: false,
    });
    return steps;
  }
  const full: PolicyInput = {
    principal,
    request: {
      endpoint: request.endpoint,
      model: request.bodyFollows ? request.model : undefined,
      stream: request.bodyFollows && request.stream,
      maxTokens: request.bodyFollows ? withDefault(ctx, request) : undefined,
      path: request.path,
      method: request.method,
    },
    dataClasses: request.bodyFollows ? request.dataClasses : new Set(),
    route: request.bodyFollows ? request.route : undefined,
    nowMs,
  };
  for (const iso of engine.isolation) {
    const model = full.request.model;
    const own = iso.tenant === principal.tenant;
    const owned = model !== undefined && iso.owns(model);
    steps.push({
      kind: 'isolation',
      ruleId: iso.ruleId,
      result: owned && !own ? 'match' : 'no_match',
      detail:
        model === undefined
          ? 'no model'
          : own
            ? `the caller's own tenant${owned ? ` owns ${model}` : ''}`
            : owned
              ? `${iso.tenant} owns ${model}`
              : `${iso.tenant} does not own ${model}`,
      decided: decided(iso.ruleId),
    });
  }
  for (const { rule, note } of engine.noteRules(full)) {
    steps.push({
      kind: 'rule',
      ruleId: rule.ruleId,
      action: rule.action === 'allow' ? 'ALLOW' : 'DENY',
      result: note.result,
      detail: noteText(note, rule.action),
      decided: decided(rule.ruleId),
    });
  }
  if (engine.rules.all.length > 0)
    steps.push({
      kind: 'default',
      ruleId: DEFAULT_RULE_ID,
      result: decided(DEFAULT_RULE_ID) ? 'deny' : 'not_applied',
      detail: decided(DEFAULT_RULE_ID) ? 'no ALLOW rule matched' : 'an earlier step decided',
      decided: decided(DEFAULT_RULE_ID),
    });
  if (engine.opa !== undefined) {
    steps.push({
      kind: 'opa',
      ruleId: opaVerdict?.ruleId ?? engine.opa.ruleId,
      result: opaVerdict === undefined ? 'not_asked' : opaVerdict.effect,
      detail: opaVerdict === undefined ? 'the local policy decided first' : opaVerdict.reason,
      decided: opaVerdict !== undefined && decided(opaVerdict.ruleId),
    });
  }
  return steps;
}

function noteText(note: RuleNote, action: 'allow' | 'deny'): string {
  switch (note.result) {
    case 'match':
      return 'every part matched';
    case 'no_match':
      return note.part === 'when' ? 'when is false' : `${note.part} does not match ${note.detail}`;
    case 'pending':
      return `${note.part}: ${note.detail}`;
    case 'error':
      return `${note.part} failed (${note.detail}); counts as ${action === 'deny' ? 'a match' : 'no match'}`;
  }
}
