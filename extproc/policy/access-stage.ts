// Decides whether the caller may use this endpoint (at request headers) and this model (once the
// body names it), from the principal alone: however the caller was identified (API key, JWT,
// mTLS), the limits its credential carries are its scope. A caller without a scope is not
// restricted by this stage. Rule ids name the config that decided, so a 403 can be traced to
// one line of configuration.
import type { RequestContext } from '../pipeline/context.ts';
import { internalError, refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';

export const policyAccess = defineStage({
  name: 'policy.access',
  summary: "Refuses endpoints and models outside the caller's scope (403), and paths that are not LLM APIs (404).",
  needs: ['api', 'principal', 'parsed'],
  provides: [],
  create: (config) => {
    const allowUnknown = config.policy.unknownEndpoints === 'allow';
    return {
      onRequestHeaders(ctx: RequestContext): void {
        const p = ctx.principal;
        // Identity runs first and refuses anonymous callers; a missing principal here is a
        // pipeline bug, and the policy fails closed.
        if (p === undefined) throw internalError();
        const scope = p.scope;
        if (ctx.api === 'unknown') {
          if (!allowUnknown)
            throw refuse(
              'unsupported_endpoint',
              `${ctx.method} ${pathOnly(ctx.path)} is not an LLM API the gateway serves.`,
            );
          if (scope !== undefined && scope.endpoints !== 'all')
            throw refuse('endpoint_not_allowed', 'This caller may not call endpoints outside the LLM APIs.', {
              ruleId: `${scope.source}.endpoints`,
            });
          return;
        }
        if (scope !== undefined && scope.endpoints !== 'all' && !scope.endpoints.has(ctx.api)) {
          throw refuse('endpoint_not_allowed', `This caller may not call ${ctx.api}.`, {
            ruleId: `${scope.source}.endpoints`,
          });
        }
      },
      onRequestBody(ctx: RequestContext): void {
        const model = ctx.modelRequested;
        const scope = ctx.principal?.scope;
        if (model === undefined || scope === undefined) return;
        const ruleId = `${scope.source}.models`;
        if (!scope.models(model)) {
          ctx.decide({ stage: 'policy.access', ruleId, effect: 'deny', reason: 'model outside the caller scope' });
          throw refuse('model_not_allowed', `This caller may not use model "${model}".`, { ruleId });
        }
        ctx.decide({ stage: 'policy.access', ruleId, effect: 'allow', reason: 'model within the caller scope' });
      },
    };
  },
});

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
