// API keys: generated here, stored in the config only as SHA-256 hashes, looked up by hash.
// A key is 32 random bytes, base64url, behind a recognisable prefix so secret scanners can
// find leaked ones.
import { createHash, randomBytes } from 'node:crypto';
import type { ApiKeyConfig, Config } from '../config/schema.ts';
import type { CredentialScope, Principal } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { compilePatterns } from '../policy/patterns.ts';
import type { ApiKeyAuthenticator } from './authenticator.ts';

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

/** Keys from the config, indexed once per snapshot; undefined when the config has none. */
export function createApiKeyAuthenticator(config: Config): ApiKeyAuthenticator | undefined {
  if (config.identity.apiKeys.length === 0) return undefined;
  // Principals are built once per config snapshot: a request only looks its key up.
  const index = new Map<string, Principal>();
  for (const [hash, entry] of indexApiKeys(config.identity.apiKeys)) index.set(hash, principalOf(entry));
  return {
    authenticate(key) {
      const principal = index.get(hashApiKey(key));
      if (principal === undefined) throw refuse('invalid_api_key', 'Invalid API key.');
      return principal;
    },
  };
}

/** A key's entry as a method-neutral principal; the key's endpoint and model lists become the
 * credential's scope, which policy.access enforces without knowing it came from a key. */
export function principalOf(entry: ApiKeyConfig): Principal {
  const scope: CredentialScope = {
    endpoints: entry.endpoints.includes('*') ? 'all' : new Set(entry.endpoints),
    models: compilePatterns(entry.models),
    source: `identity.apiKeys.${entry.id}`,
  };
  return {
    id: entry.id,
    tenant: entry.tenant,
    team: entry.team,
    user: entry.user,
    roles: entry.roles,
    attributes: {},
    method: 'api_key',
    issuer: 'config',
    scope,
  };
}
