// Decides who is calling, from an API key. 401 for a missing, malformed, unknown or disabled
// key. The credential is removed before the request goes upstream (the model server has no use
// for it and must not log it); the principal travels as trusted x-lmgate-* headers instead,
// which the state machine strips from client input.
import type { ApiKeyConfig } from '../config/schema.ts';
import type { CredentialScope, Principal, RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { compilePatterns } from '../policy/patterns.ts';
import { hashApiKey, indexApiKeys, presentedKey } from './api-keys.ts';

export const apiKeyIdentity = defineStage({
  name: 'identity.api_key',
  summary: 'Identifies the caller by API key (401 otherwise); the key never goes upstream.',
  needs: [],
  provides: ['principal'],
  create: (config) => {
    // Principals are built once per config snapshot: a request only looks its key up.
    const index = new Map<string, Principal>();
    for (const [hash, entry] of indexApiKeys(config.identity.apiKeys)) index.set(hash, principalOf(entry));
    return {
      onRequestHeaders(ctx: RequestContext): void {
        const key = presentedKey(ctx.headers);
        if (key === undefined) {
          throw refuse(
            'missing_api_key',
            ctx.headers.has('authorization')
              ? 'Malformed Authorization header; expected "Bearer <api key>".'
              : 'Missing API key. Send it as "Authorization: Bearer <api key>".',
          );
        }
        const principal = index.get(hashApiKey(key));
        if (principal === undefined) throw refuse('invalid_api_key', 'Invalid API key.');
        ctx.principal = principal;
        const out = ctx.out;
        out.removeHeaders.push('authorization', 'x-api-key');
        out.setHeaders.push(['x-lmgate-tenant', principal.tenant], ['x-lmgate-key-id', principal.id]);
        ctx.setMetadata('tenant', principal.tenant);
        ctx.setMetadata('principal_id', principal.id);
      },
    };
  },
});

/** A key's entry as a method-neutral principal; the key's endpoint and model lists become the
 * credential's scope, which policy.access enforces without knowing it came from a key. */
function principalOf(entry: ApiKeyConfig): Principal {
  const scope: CredentialScope = {
    endpoints: entry.endpoints.includes('*') ? 'all' : new Set(entry.endpoints),
    models: compilePatterns(entry.models),
    source: `identity.apiKeys.${entry.id}`,
  };
  return {
    id: entry.id,
    tenant: entry.tenant,
    team: entry.team,
    user: entry.user,
    roles: entry.roles,
    attributes: {},
    method: 'api_key',
    issuer: 'config',
    scope,
  };
}
