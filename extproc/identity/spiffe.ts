// SPIFFE IDs (spiffe://<trust-domain>/<path>), read as strictly as the SPIFFE ID specification
// writes them: a lowercase trust domain of [a-z0-9.-_], path segments of [A-Za-z0-9.-_] that are
// neither empty nor "." or "..", no trailing slash, no port, user info, query, fragment or
// percent-encoding, 2048 bytes at most. So an ID compares as a string, no two spellings name one
// workload, and none carries the , ; = or " that would need quoting in x-forwarded-client-cert.
// A workload ID has a path: the bare trust domain names the domain, not a caller.

export interface SpiffeId {
  readonly id: string;
  readonly trustDomain: string;
  readonly segments: readonly string[];
}

export type SpiffeParse = { ok: true; value: SpiffeId } | { ok: false; why: string };

const PREFIX = 'spiffe://';
const MAX_LENGTH = 2048;
const MAX_TRUST_DOMAIN = 255;
export const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
export const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

export function parseSpiffeId(uri: string): SpiffeParse {
  if (!uri.startsWith(PREFIX)) return { ok: false, why: 'not a SPIFFE ID (spiffe://...)' };
  if (uri.length > MAX_LENGTH) return { ok: false, why: `longer than ${MAX_LENGTH} bytes` };
  const rest = uri.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  if (trustDomain.length === 0 || trustDomain.length > MAX_TRUST_DOMAIN || !TRUST_DOMAIN.test(trustDomain))
    return { ok: false, why: 'invalid trust domain' };
  if (slash === -1) return { ok: false, why: 'no path: the ID names a trust domain, not a workload' };
  const segments = rest.slice(slash + 1).split('/');
  for (const s of segments) {
    if (!PATH_SEGMENT.test(s) || s === '.' || s === '..') return { ok: false, why: 'invalid path segment' };
  }
  return { ok: true, value: { id: uri, trustDomain, segments } };
}
