// The strict reading of a compact JWS, before any key is looked up or jose sees the token.
// jose alone is lenient where a gateway cannot be: Node's base64url decoder skips whitespace and
// padding and ignores non-zero trailing bits, so many strings decode to the same token (and a
// log or cache keyed by the string sees different tokens); JSON.parse keeps the last of two
// equal members, where another verifier keeps the first. Here a token is exactly three
// canonical base64url segments without padding or whitespace, its header and payload are JSON
// objects without repeated (or case-ambiguous) members, and header parameters that would make a
// verifier fetch or trust a key the token names itself (jku, x5u, jwk, x5c), change what is
// signed (b64) or demand extensions (crit) are refused rather than ignored.
import { scanJson } from '../../llm/json-scan.ts';
import { reject } from './rejection.ts';

export interface ParsedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly alg: string;
  readonly kid: string | undefined;
  readonly typ: string | undefined;
  readonly iss: string;
}

/** Header parameters never honoured: key sources the token chooses (RFC 7515 §4.1.2-4.1.6),
 * the unencoded-payload option (RFC 7797) and critical extensions, none of which we implement. */
const REFUSED_HEADER_PARAMS = ['crit', 'jku', 'x5u', 'jwk', 'x5c', 'b64'] as const;

/** Nesting deeper than this is not a claim set any IdP issues. */
const MAX_JSON_DEPTH = 16;
const MAX_KID_LENGTH = 256;

/** A-Z a-z 0-9 - _ as a lookup table: one array read per character. */
const B64URL = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') B64URL[c.charCodeAt(0)] = 1;
/** Each base64url character's 6-bit value, for the canonical-tail check. */
const B64URL_VALUE = new Uint8Array(128);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').forEach((c, i) => {
  B64URL_VALUE[c.charCodeAt(0)] = i;
});

/** Whether [start, end) of `s` is canonical unpadded base64url: only the alphabet, a length
 * that encodes whole bytes, and zero bits in the last character's unused low bits (RFC 4648
 * §3.5), so exactly one string encodes each byte sequence. */
export function isCanonicalBase64url(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len === 0 || len % 4 === 1) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || B64URL[c] === 0) return false;
  }
  const last = B64URL_VALUE[s.charCodeAt(end - 1)]!;
  if (len % 4 === 2) return (last & 0x0f) === 0;
  if (len % 4 === 3) return (last & 0x03) === 0;
  return true;
}

/** Parses a token, or throws a JwtRejection naming what is wrong. */
export function parseCompactJws(token: string, maxBytes: number): ParsedJws {
  // Tokens are ASCII once they pass the alphabet check, so length is bytes.
  if (token.length > maxBytes) throw reject('too_large');
  const dot1 = token.indexOf('.');
  const dot2 = dot1 === -1 ? -1 : token.indexOf('.', dot1 + 1);
  if (dot2 === -1 || token.indexOf('.', dot2 + 1) !== -1) throw reject('malformed');
  if (
    !isCanonicalBase64url(token, 0, dot1) ||
    !isCanonicalBase64url(token, dot1 + 1, dot2) ||
    !isCanonicalBase64url(token, dot2 + 1, token.length)
  )
    throw reject('malformed');
  const header = jsonObject(Buffer.from(token.slice(0, dot1), 'base64url'));
  const payload = jsonObject(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url'));

  for (const p of REFUSED_HEADER_PARAMS) if (Object.hasOwn(header, p)) throw reject('header');
  const { alg, kid, typ } = header;
  if (typeof alg !== 'string' || alg === '') throw reject('malformed');
  if (kid !== undefined && (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH))
    throw reject('malformed');
  if (typ !== undefined && typeof typ !== 'string') throw reject('type');
  const iss = payload.iss;
  if (typeof iss !== 'string') throw reject('unknown_issuer');
  return { header, payload, alg, kid, typ, iss };
}

function jsonObject(bytes: Buffer): Record<string, unknown> {
  const scan = scanJson(bytes, { maxDepth: MAX_JSON_DEPTH });
  if (!scan.ok) {
    const e = scan.error.code;
    throw reject(e === 'duplicate_key' || e === 'ambiguous_key' ? 'duplicate_member' : 'malformed');
  }
  if (scan.rootType !== 'object') throw reject('malformed');
  return JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
}
