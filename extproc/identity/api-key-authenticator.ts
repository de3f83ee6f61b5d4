// Verifies API keys against the key list of one config snapshot. The key names its id
// (api-keys.ts), which finds the entry; the key's SHA-256 is then compared with the entry's in
// constant time (crypto.timingSafeEqual), so how long a refusal takes says nothing about how much
// of a guessed secret was right.
//
// Every failure is the same 401 invalid_api_key with the same message, and costs the same work:
// a malformed key, an unknown id, a wrong secret, a disabled or an expired key all hash the
// presented key (bounded to the longest well-formed key) and make both comparisons, against a
// stand-in hash when there is no entry. Ids are not secret (audit records and upstream headers
// carry them); what a caller must not learn is whether a secret was close, or why a key it holds
// stopped working. The audit record tells the operator why, for keys that exist.
import { timingSafeEqual } from 'node:crypto';
import type { ApiKeyConfig } from '../config/schema.ts';
import type { CredentialScope, Principal, RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import type { Clock } from '../pipeline/stage.ts';
import { compileModelPatterns } from '../policy/model-names.ts';
import { apiKeyDigest, apiKeyId, MAX_KEY_LENGTH } from './api-keys.ts';
import type { ApiKeyAuthenticator } from './authenticator.ts';

export const INVALID_KEY_MESSAGE = 'Invalid API key.';

/** An entry as the request path reads it: hashes as bytes, times as epoch milliseconds, the
 * principal built once. */
interface CompiledKey {
  readonly hash: Buffer;
  /** The secret before the last rotation, or the stand-in when there is none (never matches:
   * no key hashes to 32 zero bytes that anyone can find). */
  readonly previousHash: Buffer;
  readonly previousUntilMs: number;
  readonly expiresAtMs: number;
  readonly disabled: boolean;
  readonly principal: Principal;
  readonly ruleId: string;
}

const STAND_IN = Buffer.alloc(32);

/** The decisions an operator reads in the audit record when a known key is refused. */
export const REFUSAL_REASONS = {
  secret: 'wrong secret for this key id',
  previousExpired: "the key's previous secret, after its rotation grace",
  disabled: 'the key is disabled',
  expired: 'the key has expired',
} as const;

export function createApiKeyAuthenticator(keys: readonly ApiKeyConfig[], clock: Clock): ApiKeyAuthenticator {
  const byId = new Map<string, CompiledKey>();
  for (const entry of keys) byId.set(entry.id, compile(entry));
  const deny = (ctx: RequestContext, key: CompiledKey, reason: string) => {
    ctx.decide({ stage: 'identity.authenticate', ruleId: key.ruleId, effect: 'deny', reason });
    return refuse('invalid_api_key', INVALID_KEY_MESSAGE);
  };
  return {
    authenticate(presented, ctx) {
      const id = apiKeyId(presented);
      const entry = id === undefined ? undefined : byId.get(id);
      // The same work whatever the key: one hash of at most MAX_KEY_LENGTH characters (a longer
      // one is malformed anyway), two comparisons.
      const digest = apiKeyDigest(presented.length <= MAX_KEY_LENGTH ? presented : presented.slice(0, MAX_KEY_LENGTH));
      const current = timingSafeEqual(digest, entry?.hash ?? STAND_IN);
      const previous = timingSafeEqual(digest, entry?.previousHash ?? STAND_IN);
      if (entry === undefined) throw refuse('invalid_api_key', INVALID_KEY_MESSAGE);
      if (!current && !previous) throw deny(ctx, entry, REFUSAL_REASONS.secret);
      const now = clock.now();
      if (!current && now >= entry.previousUntilMs) throw deny(ctx, entry, REFUSAL_REASONS.previousExpired);
      if (entry.disabled) throw deny(ctx, entry, REFUSAL_REASONS.disabled);
      if (now >= entry.expiresAtMs) throw deny(ctx, entry, REFUSAL_REASONS.expired);
      // Who still uses the old secret, while there is time to tell them.
      if (!current)
        ctx.decide({
          stage: 'identity.authenticate',
          ruleId: entry.ruleId,
          effect: 'allow',
          reason: "the key's previous secret, within its rotation grace",
        });
      return entry.principal;
    },
  };
}

function compile(entry: ApiKeyConfig): CompiledKey {
  return {
    hash: Buffer.from(entry.sha256, 'hex'),
    previousHash: entry.previous ? Buffer.from(entry.previous.sha256, 'hex') : STAND_IN,
    previousUntilMs: entry.previous ? Date.parse(entry.previous.expiresAt) : 0,
    expiresAtMs: entry.expiresAt === undefined ? Number.POSITIVE_INFINITY : Date.parse(entry.expiresAt),
    disabled: entry.disabled,
    principal: principalOf(entry),
    ruleId: `identity.apiKeys.${entry.id}`,
  };
}

/** A key's entry as a method-neutral principal; the key's endpoint and model lists become the
 * credential's scope, which policy.access enforces without knowing it came from a key. */
export function principalOf(entry: ApiKeyConfig): Principal {
  const scope: CredentialScope = {
    endpoints: entry.endpoints.includes('*') ? 'all' : new Set(entry.endpoints),
    models: compileModelPatterns(entry.models),
    anyModel: entry.models.includes('*'),
    source: `identity.apiKeys.${entry.id}`,
  };
  return {
    id: entry.id,
    tenant: entry.tenant,
    team: entry.team,
    user: entry.user,
    roles: entry.roles,
    attributes: Object.freeze({ ...entry.attributes }),
    method: 'api_key',
    issuer: 'config',
    scope,
  };
}
