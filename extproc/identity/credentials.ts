// What credential a request presents, read once from its headers and classified by shape, so
// each authenticator only sees credentials of its own kind and an ambiguous request (two
// credentials, a JWT where a key belongs) is refused rather than guessed at.
import { KEY_PREFIX } from './api-keys.ts';

export type Presented =
  /** No Authorization and no x-api-key. */
  | { readonly kind: 'none' }
  /** A credential the gate refuses before any lookup; `why` is safe to show the client. */
  | { readonly kind: 'malformed'; readonly why: string }
  /** An LM Gate API key (`lmg_…`), from `Authorization: Bearer` or x-api-key. */
  | { readonly kind: 'api_key'; readonly key: string }
  /** A compact JWS (three dot-separated parts) from `Authorization: Bearer`. */
  | { readonly kind: 'jwt'; readonly token: string };

// base64url segments; the strict syntax check (padding, sizes) is the JWT authenticator's.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function presentedCredential(headers: ReadonlyMap<string, string>): Presented {
  const auth = headers.get('authorization');
  const xApiKey = headers.get('x-api-key');
  if (auth !== undefined && xApiKey !== undefined)
    return { kind: 'malformed', why: 'Send one credential: Authorization or x-api-key, not both.' };
  if (auth !== undefined) {
    const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m === null)
      return { kind: 'malformed', why: 'Malformed Authorization header; expected "Bearer <credential>".' };
    const token = m[1]!;
    if (token.startsWith(KEY_PREFIX)) return { kind: 'api_key', key: token };
    if (JWT_SHAPE.test(token)) return { kind: 'jwt', token };
    return { kind: 'malformed', why: 'The bearer credential is neither an LM Gate API key nor a JWT.' };
  }
  if (xApiKey !== undefined) {
    const key = xApiKey.trim();
    if (key === '') return { kind: 'malformed', why: 'Empty x-api-key header.' };
    // A token in x-api-key is an API key or nothing: a JWT belongs in Authorization, where its
    // audience and issuer rules apply.
    if (!key.startsWith(KEY_PREFIX)) return { kind: 'malformed', why: 'x-api-key carries LM Gate API keys only.' };
    return { kind: 'api_key', key };
  }
  return { kind: 'none' };
}
