// A policy decision as a value: who decided (the rule id, a config path), allow or deny, why, and
// for a denial what the client gets. The gate's stages turn a denial into the refusal and record
// every verdict (ctx.decide → audit record, lmgate_policy_decisions_total); `lm-gate policy
// explain` and `policy test` print the same values.
import type { RequestContext } from '../pipeline/context.ts';
import { type ErrorCode, type GateError, refuse } from '../pipeline/errors.ts';
import type { Metrics } from '../telemetry/metrics.ts';

/** The stages whose verdicts explain lists; routing refuses a model no route may take. */
export type PolicyStageName = 'policy.access' | 'policy.rules' | 'routing.route';

export interface Verdict {
  readonly stage: PolicyStageName;
  readonly ruleId: string;
  readonly effect: 'allow' | 'deny';
  /** For the audit and explain: why, in the policy's terms. Never client input. */
  readonly reason: string;
  /** A denial's catalog code and client message. */
  readonly code?: ErrorCode;
  readonly message?: string;
}

export function allow(stage: PolicyStageName, ruleId: string, reason: string): Verdict {
  return { stage, ruleId, effect: 'allow', reason };
}

export function deny(
  stage: PolicyStageName,
  ruleId: string,
  reason: string,
  code: ErrorCode,
  message: string,
): Verdict {
  return { stage, ruleId, effect: 'deny', reason, code, message };
}

export function refusalOf(v: Verdict): GateError {
  return refuse(v.code ?? 'policy_denied', v.message ?? 'A policy rule denied this request.', { ruleId: v.ruleId });
}

/** Records the verdict on the request (audit) and in the decisions counter; a denial is then
 * thrown as its refusal. */
export function apply(ctx: RequestContext, metrics: Metrics, v: Verdict): void {
  // A verdict is a Decision (and more): recorded as it is, without a copy.
  ctx.decide(v);
  metrics.countPolicyDecision(v.ruleId, v.effect);
  if (v.effect === 'deny') throw refusalOf(v);
}
