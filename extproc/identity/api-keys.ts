// API keys: generated here, stored in the config only as SHA-256 hashes, looked up by hash.
// A key is 32 random bytes, base64url, behind a recognisable prefix so secret scanners can
// find leaked ones.
import { createHash, randomBytes } from 'node:crypto';
import type { ApiKeyConfig } from '../config/schema.ts';

export const KEY_PREFIX = 'lmg_';

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Hash → key entry, built once per config load. Disabled keys are left out: they fail like
 * unknown ones, so a caller cannot tell a revoked key from a wrong one. */
export function indexApiKeys(keys: readonly ApiKeyConfig[]): Map<string, ApiKeyConfig> {
  const index = new Map<string, ApiKeyConfig>();
  for (const k of keys) if (!k.disabled) index.set(k.sha256, k);
  return index;
}

/** The presented credential: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key`. */
export function presentedKey(headers: ReadonlyMap<string, string>): string | undefined {
  const auth = headers.get('authorization');
  if (auth !== undefined) {
    const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  const x = headers.get('x-api-key');
  return x === undefined ? undefined : x.trim() || undefined;
}
