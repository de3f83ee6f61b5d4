// The PeerAuthenticator of identity.mtls: the client certificate Envoy verified, read from the
// source the config names, mapped to a principal (mtls-mapping.ts).
//
// - attributes: ctx.peer, from the ext_proc request attributes. connection.uri_san_peer_certificate
//   shows the first URI SAN only, so every URI SAN is read from connection.peer_certificate.
// - xfcc: the x-forwarded-client-cert header, which the config states Envoy sanitises and sets.
//   Exactly one element (one proxy's view of one certificate), with its URI field: Envoy writes
//   one URI= per URI SAN and an empty URI= for a certificate without.
//
// Mapping is a pure function of the certificate (or header) and the config snapshot, so each
// admitted identity is cached by it: a client on a kept-alive connection presents the same
// certificate on every request, and the steady state costs one Map lookup.
import type { Config } from '../config/schema.ts';
import type { Principal, RequestContext } from '../pipeline/context.ts';
import { internalError } from '../pipeline/errors.ts';
import type { PeerAuthenticator } from './authenticator.ts';
import { certificateUriSans } from './certificate.ts';
import { type CertificateIdentity, compileMtlsMapping, notMapped } from './mtls-mapping.ts';
import { parseXfcc, XFCC_HEADER } from './xfcc.ts';

/** Identities kept per snapshot, and the longest certificate or header worth keeping: a PEM is
 * 0.7-2 KiB; a longer XFCC (one carrying Cert and Chain) is mapped on every request instead. */
const CACHE_ENTRIES = 512;
const CACHE_KEY_MAX = 8192;

export function createPeerAuthenticator(config: Config): PeerAuthenticator | undefined {
  const cfg = config.identity.mtls;
  if (cfg === undefined) return undefined;
  const map = compileMtlsMapping(cfg);
  const cache = new Map<string, Principal>();
  const remember = (key: string, p: Principal): Principal => {
    if (key.length > CACHE_KEY_MAX) return p;
    // Oldest first: a bounded set of recent certificates, not an LRU; a miss only costs a parse.
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, p);
    return p;
  };
  if (cfg.source === 'xfcc') {
    return {
      authenticate(ctx: RequestContext): Principal | undefined {
        const header = ctx.headers.get(XFCC_HEADER);
        if (header === undefined) return undefined;
        return cache.get(header) ?? remember(header, map(fromXfcc(header)));
      },
    };
  }
  return {
    authenticate(ctx: RequestContext): Principal | undefined {
      const peer = ctx.peer;
      if (peer === undefined || !peer.mtls) return undefined;
      const pem = peer.certificate;
      if (pem === undefined) {
        // Without the certificate a second URI SAN would go unseen: fail closed, and say why
        // where the operator looks (the audit record and the gate's log), not to the client.
        ctx.failure =
          'identity.mtls: Envoy sent connection.mtls without connection.peer_certificate; list it in the ext_proc filter request_attributes';
        throw internalError();
      }
      const hit = cache.get(pem);
      if (hit !== undefined) return hit;
      const sans = certificateUriSans(pem);
      if (!sans.ok) throw notMapped(sans.why);
      const identity: CertificateIdentity = { uris: sans.uris, subject: peer.subject };
      return remember(pem, map(identity));
    },
  };
}

/** The one certificate an Envoy-set XFCC describes, or a 401 for any header that is not exactly
 * that. */
function fromXfcc(header: string): CertificateIdentity {
  const parsed = parseXfcc(header);
  if (!parsed.ok) throw notMapped(`x-forwarded-client-cert is malformed (${parsed.why})`);
  if (parsed.elements.length !== 1)
    throw notMapped('x-forwarded-client-cert describes several certificates, so which one is the caller is ambiguous');
  const el = parsed.elements[0]!;
  if (el.uri.length === 0)
    throw notMapped('x-forwarded-client-cert has no URI field (Envoy needs set_current_client_cert_details uri: true)');
  // One empty URI= is Envoy's way of saying "no URI SAN"; an empty one beside others is not.
  if (el.uri.length === 1 && el.uri[0] === '') return { uris: [], subject: el.subject };
  if (el.uri.includes('')) throw notMapped('x-forwarded-client-cert has an empty URI beside others');
  return { uris: el.uri, subject: el.subject };
}
