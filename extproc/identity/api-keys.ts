// The API key format: `lmg_<id>_<secret>`. The id is the key's config id, public (audit records
// and the x-lmgate-key-id header carry it), so the gate finds a key's entry by id instead of by
// hash; the secret is 32 random bytes, base64url without padding (43 characters). The secret is
// read as the fixed-length tail, so an id may itself contain `_`. The recognisable prefix lets
// secret scanners find leaked keys.
//
// Only the key's SHA-256 is stored. A plain fast hash is right here, unlike for passwords: the
// secret is 256 random bits, so there is nothing to guess from a leaked hash (a password hash's
// salt and work factor defend low-entropy secrets against brute force; against 2^256 they add
// only cost to every request).
import { hash, randomBytes } from 'node:crypto';

export const KEY_PREFIX = 'lmg_';
export const SECRET_LENGTH = 43;
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** The longest well-formed key: prefix, a 64-character id, `_`, the secret. */
export const MAX_KEY_LENGTH = KEY_PREFIX.length + 64 + 1 + SECRET_LENGTH;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A new key for the key id `id`: shown once to its holder, never stored. */
export function generateApiKey(id: string): string {
  if (!KEY_ID_PATTERN.test(id)) throw new Error(`key ids are 1-64 characters of A-Z a-z 0-9 . _ -, not "${id}"`);
  return `${KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
}

/** The id a key names, or undefined when it is not `lmg_<id>_<43-character secret>` (a
 * truncated key, a key of the old id-less format, anything else behind the prefix). */
export function apiKeyId(key: string): string | undefined {
  const sep = key.length - SECRET_LENGTH - 1;
  if (sep <= KEY_PREFIX.length || key.length > MAX_KEY_LENGTH || !key.startsWith(KEY_PREFIX) || key[sep] !== '_')
    return undefined;
  const id = key.slice(KEY_PREFIX.length, sep);
  if (!KEY_ID_PATTERN.test(id) || !SECRET_PATTERN.test(key.slice(sep + 1))) return undefined;
  return id;
}

/** The raw SHA-256 of a key, as the gate compares it. */
export function apiKeyDigest(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/** The lowercase hex SHA-256 of a key, as the config stores it. */
export function hashApiKey(key: string): string {
  return hash('sha256', key, 'hex');
}
