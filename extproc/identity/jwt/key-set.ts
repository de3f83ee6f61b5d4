// An issuer's published signing keys (its JWKS), imported once when fetched and looked up per
// token by kid and algorithm. Only public signature keys of the types our algorithms use are
// kept; a key is matched to a token only when its type fits the token's alg (RSA for RS*/PS*,
// the alg's own curve for ES*, Ed25519 for EdDSA), so a key can never be used with an algorithm
// of another family (the HS256-with-an-RSA-public-key confusion).
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JwtAlgorithm } from './config.ts';

/** Most keys a JWKS may hold; IdPs publish a handful (current, next, previous). */
export const MAX_KEYS = 64;
/** RSA keys shorter than this are refused (NIST SP 800-131A). */
const MIN_RSA_BITS = 2048;

export interface VerificationKey {
  readonly kid: string | undefined;
  /** RSA, EC with its curve, or Ed25519: which algorithms it may verify. */
  readonly family: 'RSA' | 'P-256' | 'P-384' | 'P-521' | 'Ed25519';
  /** The JWK's alg, when it names one: the key is then used with that algorithm only. */
  readonly alg: string | undefined;
  readonly key: KeyObject;
}

const FAMILY_OF_ALG: Record<JwtAlgorithm, VerificationKey['family']> = {
  RS256: 'RSA',
  RS384: 'RSA',
  RS512: 'RSA',
  PS256: 'RSA',
  PS384: 'RSA',
  PS512: 'RSA',
  ES256: 'P-256',
  ES384: 'P-384',
  ES512: 'P-521',
  EdDSA: 'Ed25519',
  Ed25519: 'Ed25519',
};

export function familyOf(alg: string): VerificationKey['family'] | undefined {
  return Object.hasOwn(FAMILY_OF_ALG, alg) ? FAMILY_OF_ALG[alg as JwtAlgorithm] : undefined;
}

function fits(k: VerificationKey, alg: string, family: VerificationKey['family']): boolean {
  if (k.family !== family) return false;
  if (k.alg === undefined) return true;
  // EdDSA and Ed25519 name the same signature with an Ed25519 key.
  return k.alg === alg || (family === 'Ed25519' && (k.alg === 'EdDSA' || k.alg === 'Ed25519'));
}

export class KeySet {
  readonly size: number;
  private readonly byKid = new Map<string, VerificationKey[]>();
  private readonly all: readonly VerificationKey[];

  constructor(keys: readonly VerificationKey[]) {
    this.all = keys;
    this.size = keys.length;
    for (const k of keys) {
      if (k.kid === undefined) continue;
      const same = this.byKid.get(k.kid);
      if (same) same.push(k);
      else this.byKid.set(k.kid, [k]);
    }
  }

  /** The one key that verifies `alg` under `kid`; without a kid, the one key of the set that
   * fits, if only one does. undefined when none (or, without a kid, several) fit. */
  find(kid: string | undefined, alg: string): VerificationKey | undefined {
    const family = familyOf(alg);
    if (family === undefined) return undefined;
    const candidates = kid === undefined ? this.all : this.byKid.get(kid);
    if (candidates === undefined) return undefined;
    let found: VerificationKey | undefined;
    for (const k of candidates) {
      if (!fits(k, alg, family)) continue;
      if (found !== undefined) return undefined;
      found = k;
    }
    return found;
  }
}

/** The usable keys of a JWKS document, and how many were skipped (and why, for the log). */
export function importJwks(doc: unknown): { keys: VerificationKey[]; skipped: string[] } | { error: string } {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys))
    return { error: 'not a JWKS (an object with a keys array)' };
  const list = (doc as { keys: unknown[] }).keys;
  const keys: VerificationKey[] = [];
  const skipped: string[] = [];
  for (const jwk of list) {
    if (keys.length >= MAX_KEYS) {
      skipped.push(`more than ${MAX_KEYS} keys`);
      break;
    }
    const r = importJwk(jwk);
    if (typeof r === 'string') skipped.push(r);
    else keys.push(r);
  }
  return { keys, skipped };
}

/** One JWK as a verification key, or why it is not one. Only the public members are read, so a
 * JWKS that wrongly publishes private parts still yields public keys. */
export function importJwk(jwk: unknown): VerificationKey | string {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'a key that is not an object';
  const j = jwk as Record<string, unknown>;
  const kid = typeof j.kid === 'string' && j.kid !== '' ? j.kid : undefined;
  const label = kid === undefined ? 'a key without kid' : `key ${JSON.stringify(kid.slice(0, 64))}`;
  if (j.use !== undefined && j.use !== 'sig') return `${label}: use is not sig`;
  if (j.key_ops !== undefined && !(Array.isArray(j.key_ops) && j.key_ops.includes('verify')))
    return `${label}: key_ops without verify`;
  if (j.alg !== undefined && (typeof j.alg !== 'string' || familyOf(j.alg) === undefined))
    return `${label}: alg is not an asymmetric signature algorithm the gate supports`;
  const alg = j.alg as string | undefined;
  let family: VerificationKey['family'];
  let pub: Record<string, unknown>;
  if (j.kty === 'RSA') {
    family = 'RSA';
    pub = { kty: 'RSA', n: j.n, e: j.e };
  } else if (j.kty === 'EC' && (j.crv === 'P-256' || j.crv === 'P-384' || j.crv === 'P-521')) {
    family = j.crv;
    pub = { kty: 'EC', crv: j.crv, x: j.x, y: j.y };
  } else if (j.kty === 'OKP' && j.crv === 'Ed25519') {
    family = 'Ed25519';
    pub = { kty: 'OKP', crv: 'Ed25519', x: j.x };
  } else return `${label}: kty/crv is not RSA, EC P-256/384/521 or OKP Ed25519`;
  if (alg !== undefined && familyOf(alg) !== family) return `${label}: alg ${alg} does not fit its key type`;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' });
  } catch {
    return `${label}: not a valid public key`;
  }
  if (family === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS)
    return `${label}: RSA key shorter than ${MIN_RSA_BITS} bits`;
  return { kid, family, alg, key };
}
