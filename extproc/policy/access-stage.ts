// Decides whether the identified caller may use this endpoint (at request headers) and this
// model (once the body names it). Rule ids name the config field that decided, so a 403 can be
// traced to one line of configuration.
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { errors } from '../pipeline/errors.ts';
import type { Stage } from '../pipeline/stage.ts';
import { compilePatterns, type Matcher } from './patterns.ts';

interface KeyPolicy {
  allEndpoints: boolean;
  endpoints: ReadonlySet<string>;
  models: Matcher;
}

export function accessStage(config: Config): Stage {
  const byKey = new Map<string, KeyPolicy>();
  for (const k of config.identity.apiKeys) {
    byKey.set(k.id, {
      allEndpoints: k.endpoints.includes('*'),
      endpoints: new Set(k.endpoints),
      models: compilePatterns(k.models),
    });
  }
  const allowUnknown = config.policy.unknownEndpoints === 'allow';

  return {
    name: 'policy.access',
    onRequestHeaders(ctx: RequestContext): void {
      const p = ctx.principal;
      // Identity runs first and refuses anonymous callers; a missing principal here is a
      // pipeline bug, and the policy fails closed.
      if (p === undefined) throw errors.internal();
      const policy = byKey.get(p.keyId);
      if (policy === undefined) throw errors.internal();
      if (ctx.api === 'unknown') {
        if (!allowUnknown)
          throw errors.notFound(`${ctx.method} ${pathOnly(ctx.path)} is not an LLM API the gateway serves.`);
        if (!policy.allEndpoints)
          throw errors.forbidden(
            'This API key may not call endpoints outside the LLM APIs.',
            `identity.apiKeys.${p.keyId}.endpoints`,
            'endpoint_not_allowed',
          );
        return;
      }
      if (!policy.allEndpoints && !policy.endpoints.has(ctx.api)) {
        throw errors.forbidden(
          `This API key may not call ${ctx.api}.`,
          `identity.apiKeys.${p.keyId}.endpoints`,
          'endpoint_not_allowed',
        );
      }
    },
    onRequestBody(ctx: RequestContext): void {
      const model = ctx.modelRequested;
      const p = ctx.principal;
      if (model === undefined || p === undefined) return;
      const ruleId = `identity.apiKeys.${p.keyId}.models`;
      if (!byKey.get(p.keyId)?.models(model)) {
        ctx.decide({ stage: 'policy.access', ruleId, effect: 'deny', reason: 'model not allowed for key' });
        throw errors.forbidden(`This API key may not use model "${model}".`, ruleId, 'model_not_allowed');
      }
      ctx.decide({ stage: 'policy.access', ruleId, effect: 'allow', reason: 'model allowed for key' });
    },
  };
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
