// Decides whether the caller may use this endpoint (at request headers) and this model (once the
// body names it), from the principal alone: however the caller was identified (API key, JWT,
// mTLS), the limits its credential carries are its scope. A caller without a scope is not
// restricted by this stage. Rule ids name the config that decided, so a 403 can be traced to
// one line of configuration. The decisions themselves are scope.ts's, which `lm-gate policy
// explain` applies too.
import type { RequestContext } from '../pipeline/context.ts';
import { internalError } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { pathOnly } from './input.ts';
import { scopeAtBody, scopeAtHeaders } from './scope.ts';
import { apply } from './verdict.ts';

export const policyAccess = defineStage({
  name: 'policy.access',
  summary: "Refuses endpoints and models outside the caller's scope (403), and paths that are not LLM APIs (404).",
  needs: ['api', 'principal', 'parsed'],
  provides: [],
  create: (config, deps) => {
    const allowUnknown = config.policy.unknownEndpoints === 'allow';
    return {
      onRequestHeaders(ctx: RequestContext): void {
        const p = ctx.principal;
        // Identity runs first and refuses anonymous callers; a missing principal here is a
        // pipeline bug, and the policy fails closed.
        if (p === undefined) throw internalError();
        const v = scopeAtHeaders(p, { endpoint: ctx.api, method: ctx.method, path: pathOnly(ctx.path) }, allowUnknown);
        if (v !== undefined) apply(ctx, deps.metrics, v);
      },
      onRequestBody(ctx: RequestContext): void {
        const p = ctx.principal;
        if (p === undefined) throw internalError();
        const v = scopeAtBody(p, ctx.modelRequested, ctx.parsed !== undefined && ctx.parsed.modelSpan === undefined);
        if (v !== undefined) apply(ctx, deps.metrics, v);
      },
    };
  },
});
