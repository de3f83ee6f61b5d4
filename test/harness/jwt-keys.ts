// Signing keys and token minting for tests: key pairs for the algorithms the gate verifies, a
// JWKS of their public halves, and tokens built from raw header and payload JSON, so a test can
// make exactly the token it means (a repeated claim, a crit header, an HS256 signature keyed by
// an RSA public key) and sign it with a key the gate trusts. Signatures come from node:crypto, not
// from a JOSE library that might refuse to produce a malformed token.
import { createHmac, createPublicKey, generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';

export type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA';

export interface TestSigningKey {
  readonly alg: TestAlg;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public JWK as an IdP publishes it (kid, alg, use). */
  readonly jwk: Record<string, unknown>;
  /** The private JWK, for an OpenID provider's keystore. */
  readonly privateJwk: Record<string, unknown>;
}

export function makeSigningKey(
  alg: TestAlg,
  kid: string = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`,
): TestSigningKey {
  const pair =
    alg === 'RS256' || alg === 'PS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : alg === 'ES384'
          ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
          : generateKeyPairSync('ed25519');
  const meta = { kid, alg, use: 'sig' };
  return {
    alg,
    kid,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    jwk: { ...pair.publicKey.export({ format: 'jwk' }), ...meta },
    privateJwk: { ...pair.privateKey.export({ format: 'jwk' }), ...meta },
  };
}

export const jwks = (...keys: TestSigningKey[]) => ({ keys: keys.map((k) => k.jwk) });

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** The JWS signature of `input` with `key` under `alg` (RFC 7518 §3). */
export function signature(alg: string, key: KeyObject, input: string): Buffer {
  switch (alg) {
    case 'RS256':
      return sign('sha256', Buffer.from(input), key);
    case 'PS256':
      return sign('sha256', Buffer.from(input), { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 });
    case 'ES256':
      return sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return sign('sha384', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
    case 'Ed25519':
      return sign(null, Buffer.from(input), key);
    default:
      throw new Error(`no test signer for ${alg}`);
  }
}

export interface MintOptions {
  /** Header members over { alg, kid, typ: 'at+jwt' }; undefined removes one. */
  header?: Record<string, unknown>;
  /** Raw header JSON, replacing the object form (repeated members, odd spacing). */
  headerJson?: string;
  /** Raw payload JSON, replacing the claims object. */
  payloadJson?: string;
  /** Sign with this key instead (a key the IdP does not publish), keeping the header's kid. */
  signWith?: KeyObject;
}

/** A compact JWS of `claims`, signed by `key`. */
export function mint(key: TestSigningKey, claims: Record<string, unknown>, opts: MintOptions = {}): string {
  const header = { alg: key.alg, kid: key.kid, typ: 'at+jwt', ...opts.header };
  for (const [k, v] of Object.entries(header)) if (v === undefined) delete (header as Record<string, unknown>)[k];
  const input = `${b64(opts.headerJson ?? JSON.stringify(header))}.${b64(opts.payloadJson ?? JSON.stringify(claims))}`;
  return `${input}.${signature(key.alg, opts.signWith ?? key.privateKey, input).toString('base64url')}`;
}

/** The classic algorithm confusion: HS256 "signed" with the RSA public key's PEM as the HMAC
 * secret, for verifiers that let the token choose the algorithm. */
export function mintHs256WithPublicKey(key: TestSigningKey, claims: Record<string, unknown>): string {
  const pem = createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' });
  const input = `${b64(JSON.stringify({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' }))}.${b64(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
}

/** alg none: no signature at all. */
export function mintUnsigned(claims: Record<string, unknown>, kid?: string): string {
  return `${b64(JSON.stringify({ alg: 'none', ...(kid ? { kid } : {}) }))}.${b64(JSON.stringify(claims))}.`;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Claims a token that should pass carries: iss, aud, sub, and a lifetime around now. */
export function validClaims(iss: string, aud: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return { iss, aud, sub: 'user-1', iat: now - 10, nbf: now - 10, exp: now + 600, ...over };
}
