// policy.rules: the gate-wide policy after the credential scope (policy.access): tenant
// isolation, DENY and ALLOW rules with the default deny, and an optional OPA, all decided by the
// shared evaluator (engine.ts). It decides at request headers when the rules that could still
// match do not read the body, otherwise once the body is in. Every decision is recorded with its
// rule id (audit, lmgate_policy_decisions_total); a denial is 403 policy_denied naming it, an OPA
// that cannot answer is 503 policy_unavailable.
//
// With no rules, no tenantModels and no OPA configured it does nothing, at no cost.
import type { RequestContext } from '../pipeline/context.ts';
import { internalError } from '../pipeline/errors.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import { NO_RULES, PENDING, PolicyEngine } from './engine.ts';
import { completeWithBody, inputAtHeaders, type PolicyInput } from './input.ts';
import { apply } from './verdict.ts';

/** The input of a request whose decision (or OPA's part of it) waits for the body. */
const waiting = defineSlot<PolicyInput>('policy.rules.input');
/** The local rules already admitted it at request headers; only OPA is left for the body. */
const locallyAdmitted = defineSlot<true>('policy.rules.admitted');

export const policyRules = defineStage({
  name: 'policy.rules',
  summary:
    'Applies policy.rules (DENY before ALLOW, default deny), tenant isolation and OPA (403, 503), at request headers when the body cannot change the answer.',
  needs: ['api', 'principal', 'parsed'],
  provides: [],
  create: (config, deps) => {
    const engine = new PolicyEngine(config);
    if (!engine.active) return {};
    const { metrics, clock } = deps;
    const opa = engine.opa;
    const askOpa = (ctx: RequestContext, input: PolicyInput): Promise<void> =>
      opa!.decide(input, ctx.signal).then((v) => apply(ctx, metrics, v));

    return {
      onRequestHeaders(ctx: RequestContext): void | Promise<void> {
        const principal = ctx.principal;
        // Identity runs first and refuses anonymous callers: fail closed on a pipeline bug.
        if (principal === undefined) throw internalError();
        const input = inputAtHeaders(ctx, principal, clock.now());
        const bodyFollows = ctx.bodyFollows;
        const local = engine.decideAtHeaders(input, bodyFollows);
        if (local === PENDING) {
          ctx.set(waiting, input);
          return;
        }
        if (local !== NO_RULES) apply(ctx, metrics, local);
        if (opa === undefined) return;
        // OPA is asked with every fact in: the body's, when one follows.
        if (!bodyFollows) return askOpa(ctx, input);
        ctx.set(waiting, input);
        ctx.set(locallyAdmitted, true);
      },
      onRequestBody(ctx: RequestContext): void | Promise<void> {
        const input = ctx.get(waiting);
        if (input === undefined) return;
        // Decided now: the input (and its conditions' variables) need not live through the
        // upstream call, where a request spends most of its life (every scavenge meanwhile
        // would copy it).
        ctx.set(waiting, undefined);
        completeWithBody(input, ctx);
        if (ctx.get(locallyAdmitted) === undefined) {
          const local = engine.decideFinal(input);
          // NO_RULES: isolation passed and no rule is configured; OPA decides.
          if (local !== NO_RULES) apply(ctx, metrics, local);
        }
        if (opa !== undefined) return askOpa(ctx, input);
      },
    };
  },
});
