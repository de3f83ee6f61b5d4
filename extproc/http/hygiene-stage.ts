// Header hygiene: the gate's own x-lmgate-* headers are trusted by Envoy, the model server and
// other filters, so a client must never set them and a client must never see them.
//
// - Request: a client-supplied x-lmgate-* is removed before any other stage reads the headers
//   and before the request goes upstream, also when spelt with underscores (x_lmgate_*), which
//   WSGI, CGI and some proxies fold into the same name. (The shipped Envoy configs refuse
//   underscored header names outright; this is the second line.) Envoy's route cache is cleared
//   when one was removed, since Envoy's routes match on the gate's x-lmgate-route.
// - Request: x-forwarded-client-cert is removed too, unless identity.mtls reads it (source: xfcc,
//   where the config states Envoy sanitises and sets it). Elsewhere a client may have written it,
//   and a model server or a later filter that trusts it would take the client's word for who it is.
// - Response: an x-lmgate-* from upstream (a model server echoing request headers, another gate
//   in front of it) is removed before the client gets the response. The gate's own refusals say
//   which rule decided in the JSON body (error.rule_id), not in a header.
import { XFCC_HEADER } from '../identity/xfcc.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { defineStage } from '../pipeline/stage.ts';

export const INTERNAL_HEADER_PREFIX = 'x-lmgate-';
const INTERNAL_HEADER_PREFIX_UNDERSCORE = 'x_lmgate_';

export function isInternalHeader(lowerCaseName: string): boolean {
  return (
    lowerCaseName.startsWith(INTERNAL_HEADER_PREFIX) || lowerCaseName.startsWith(INTERNAL_HEADER_PREFIX_UNDERSCORE)
  );
}

/** Removes internal headers; true when there were any. */
function strip(headers: Map<string, string>, remove: string[]): boolean {
  let stripped = false;
  for (const name of headers.keys()) {
    if (!isInternalHeader(name)) continue;
    headers.delete(name);
    remove.push(name);
    stripped = true;
  }
  return stripped;
}

export const headerHygiene = defineStage({
  name: 'http.hygiene',
  summary:
    'Removes x-lmgate-* (and x_lmgate_*) headers a client sent, and any an upstream sent back; removes x-forwarded-client-cert unless identity.mtls trusts it.',
  needs: [],
  provides: [],
  always: true,
  create: (config) => {
    const trustXfcc = config.identity.mtls?.source === 'xfcc';
    return {
      onRequestHeaders(ctx: RequestContext): void {
        // Envoy may already have chosen a route with the client's headers (the ext_proc filter
        // reads its per-route config before calling the gate): a spoofed x-lmgate-route would
        // have picked the cluster. Removing it must also make Envoy choose again.
        if (strip(ctx.headers, ctx.out.removeHeaders)) ctx.out.clearRouteCache = true;
        if (!trustXfcc && ctx.headers.delete(XFCC_HEADER)) ctx.out.removeHeaders.push(XFCC_HEADER);
      },
      onResponseHeaders(ctx: RequestContext): void {
        strip(ctx.responseHeaders, ctx.out.removeHeaders);
      },
    };
  },
});
