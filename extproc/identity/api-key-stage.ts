// Decides who is calling, from an API key. 401 for a missing, malformed, unknown or disabled
// key. The credential is removed before the request goes upstream (the model server has no use
// for it and must not log it); the principal travels as trusted x-lmgate-* headers instead,
// which the state machine strips from client input.
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { errors } from '../pipeline/errors.ts';
import type { Stage } from '../pipeline/stage.ts';
import { hashApiKey, indexApiKeys, presentedKey } from './api-keys.ts';

export function apiKeyStage(config: Config): Stage {
  const index = indexApiKeys(config.identity.apiKeys);
  return {
    name: 'identity.api_key',
    onRequestHeaders(ctx: RequestContext): void {
      const key = presentedKey(ctx.headers);
      if (key === undefined) {
        throw errors.unauthenticated(
          ctx.headers.has('authorization')
            ? 'Malformed Authorization header; expected "Bearer <api key>".'
            : 'Missing API key. Send it as "Authorization: Bearer <api key>".',
          'missing_api_key',
        );
      }
      const entry = index.get(hashApiKey(key));
      if (entry === undefined) throw errors.unauthenticated('Invalid API key.');
      ctx.principal = {
        keyId: entry.id,
        tenant: entry.tenant,
        team: entry.team,
        user: entry.user,
        roles: entry.roles,
        method: 'api_key',
      };
      const out = ctx.out;
      out.removeHeaders.push('authorization', 'x-api-key');
      out.setHeaders.push(['x-lmgate-tenant', entry.tenant], ['x-lmgate-key-id', entry.id]);
      ctx.setMetadata('tenant', entry.tenant);
      ctx.setMetadata('key_id', entry.id);
    },
  };
}
