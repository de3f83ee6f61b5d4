// The credential scope: what the caller's credential itself allows (an API key's endpoints and
// models), and whether paths outside the LLM APIs are served at all. policy.access applies it
// before any rule; `lm-gate policy explain` applies the same functions, so both say the same.
import type { Principal } from '../pipeline/context.ts';
import { allow, deny, type Verdict } from './verdict.ts';

const STAGE = 'policy.access';

/** At request headers: a denial, or undefined to go on. */
export function scopeAtHeaders(
  principal: Principal,
  request: { endpoint: string; method: string; path: string },
  allowUnknown: boolean,
): Verdict | undefined {
  const scope = principal.scope;
  if (request.endpoint === 'unknown') {
    if (!allowUnknown)
      return deny(
        STAGE,
        'policy.unknownEndpoints',
        'not an LLM API, and policy.unknownEndpoints is reject',
        'unsupported_endpoint',
        `${request.method} ${request.path} is not an LLM API the gateway serves.`,
      );
    if (scope !== undefined && scope.endpoints !== 'all')
      return deny(
        STAGE,
        `${scope.source}.endpoints`,
        'a path outside the LLM APIs, and the credential is limited to some endpoints',
        'endpoint_not_allowed',
        'This caller may not call endpoints outside the LLM APIs.',
      );
    return undefined;
  }
  if (scope !== undefined && scope.endpoints !== 'all' && !scope.endpoints.has(request.endpoint))
    return deny(
      STAGE,
      `${scope.source}.endpoints`,
      'endpoint outside the caller scope',
      'endpoint_not_allowed',
      `This caller may not call ${request.endpoint}.`,
    );
  return undefined;
}

/** Once the body named the model: allowed or denied by the scope, or undefined when there is
 * no model or no scope. `unnamed`: the API's body names no model (TGI), so a scope limited to
 * some models cannot tell whether it admits the call and refuses it. */
export function scopeAtBody(principal: Principal, model: string | undefined, unnamed = false): Verdict | undefined {
  const scope = principal.scope;
  if (scope === undefined) return undefined;
  const ruleId = `${scope.source}.models`;
  if (model === undefined) {
    if (!unnamed || scope.anyModel === true) return undefined;
    return deny(
      STAGE,
      ruleId,
      'the call names no model and the caller scope is limited to some models',
      'model_not_allowed',
      'This caller may only use some models, and this call names none.',
    );
  }
  if (!scope.models(model))
    return deny(
      STAGE,
      ruleId,
      'model outside the caller scope',
      'model_not_allowed',
      `This caller may not use model "${model}".`,
    );
  return allow(STAGE, ruleId, 'model within the caller scope');
}
