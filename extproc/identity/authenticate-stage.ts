// Decides who is calling: the presented credential is classified once (credentials.ts) and
// verified by the authenticator of its kind (API key, JWT), or, when the request presents none,
// the connection's client certificate. 401 for a missing, malformed, unknown or failing
// credential, and for a kind this gate is not configured to accept. The credential is removed
// before the request goes upstream (the model server has no use for it and must not log it);
// the principal travels as trusted x-lmgate-* headers instead, which header hygiene strips from
// client input.
import type { Config } from '../config/schema.ts';
import type { Principal, RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage, type StageDeps } from '../pipeline/stage.ts';
import { createApiKeyAuthenticator } from './api-key-authenticator.ts';
import type { ApiKeyAuthenticator, JwtAuthenticator, PeerAuthenticator } from './authenticator.ts';
import { presentedCredential } from './credentials.ts';
import { createJwtAuthenticator } from './jwt/authenticator.ts';
import { createPeerAuthenticator } from './peer-authenticator.ts';

export interface Authenticators {
  apiKey: ApiKeyAuthenticator | undefined;
  jwt: JwtAuthenticator | undefined;
  peer: PeerAuthenticator | undefined;
}

/** The authenticators of one config snapshot. The clock decides expiry (keys and tokens),
 * injectable so tests move time instead of waiting; the JWT keys come from the process-wide
 * cache in deps, which outlives snapshots. */
export function authenticatorsFor(config: Config, deps: StageDeps): Authenticators {
  const { apiKeys, keysFile } = config.identity;
  // A gate with a keys file accepts keys even while the file lists none: a key presented then
  // is refused as invalid, like any key the gate does not know.
  const acceptsKeys = apiKeys.length > 0 || keysFile !== undefined;
  return {
    apiKey: acceptsKeys ? createApiKeyAuthenticator(apiKeys, deps.clock) : undefined,
    jwt: createJwtAuthenticator(config, deps.jwtKeys, deps.logger, () => deps.clock.now()),
    peer: createPeerAuthenticator(config),
  };
}

export const authenticate = defineStage({
  name: 'identity.authenticate',
  summary:
    'Identifies the caller by API key, JWT or client certificate (401 otherwise); the credential never goes upstream.',
  needs: [],
  provides: ['principal'],
  create: (config, deps) => {
    const auth = authenticatorsFor(config, deps);
    const admit = (ctx: RequestContext, principal: Principal): void => {
      ctx.principal = principal;
      const out = ctx.out;
      out.removeHeaders.push('authorization', 'x-api-key');
      out.setHeaders.push(['x-lmgate-tenant', principal.tenant], ['x-lmgate-principal', principal.id]);
      if (principal.method === 'api_key') out.setHeaders.push(['x-lmgate-key-id', principal.id]);
      ctx.setMetadata('tenant', principal.tenant);
      ctx.setMetadata('principal_id', principal.id);
    };
    return {
      onRequestHeaders(ctx: RequestContext): void | Promise<void> {
        const presented = presentedCredential(ctx.headers);
        switch (presented.kind) {
          case 'api_key':
            if (auth.apiKey === undefined) throw refuse('invalid_api_key', 'This gateway accepts no API keys.');
            return admit(ctx, auth.apiKey.authenticate(presented.key, ctx));
          case 'jwt': {
            if (auth.jwt === undefined) throw refuse('invalid_token', 'This gateway accepts no JWTs.');
            const p = auth.jwt.authenticate(presented.token, ctx);
            if (p instanceof Promise) return p.then((principal) => admit(ctx, principal));
            return admit(ctx, p);
          }
          case 'malformed':
            throw refuse('missing_api_key', presented.why);
          case 'none': {
            const principal = auth.peer?.authenticate(ctx);
            if (principal !== undefined) return admit(ctx, principal);
            throw refuse('missing_api_key', 'Missing API key. Send it as "Authorization: Bearer <api key>".');
          }
        }
      },
    };
  },
});
