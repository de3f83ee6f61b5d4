// One way of identifying a caller. The identity.authenticate stage reads the presented
// credential once (credentials.ts) and hands it to the authenticator of its kind; each
// authenticator is built once per config snapshot from its own config section.
import type { Principal, RequestContext } from '../pipeline/context.ts';

/** Throws a GateError (401) for a credential of its kind that does not hold; never returns a
 * principal it has not verified. */
export interface ApiKeyAuthenticator {
  authenticate(key: string, ctx: RequestContext): Principal;
}

/** May be async (a JWKS refresh for an unknown kid); pass ctx.signal to what it awaits. */
export interface JwtAuthenticator {
  authenticate(token: string, ctx: RequestContext): Principal | Promise<Principal>;
}

/** Identity from the connection (a client certificate Envoy verified), for requests that
 * present no bearer credential: undefined when the connection carries none. */
export interface PeerAuthenticator {
  authenticate(ctx: RequestContext): Principal | undefined;
}
