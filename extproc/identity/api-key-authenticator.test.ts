// The API key check on its own: every way a key fails gives the same refusal for the same work,
// expiry and rotation grace follow the injected clock, and the operator (not the caller) learns
// why a known key was refused.
import * as crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../config/schema.ts';
import type { Decision, RequestContext } from '../pipeline/context.ts';
import { GateError } from '../pipeline/errors.ts';
import { createApiKeyAuthenticator, INVALID_KEY_MESSAGE, REFUSAL_REASONS } from './api-key-authenticator.ts';
import { generateApiKey, hashApiKey, MAX_KEY_LENGTH } from './api-keys.ts';

// Wrapped, not replaced: the real functions run, the test counts the calls.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, hash: vi.fn(real.hash), timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const at = (ms: number) => new Date(ms).toISOString();

const live = generateApiKey('live');
const off = generateApiKey('off');
const dated = generateApiKey('dated');
const rotatedOld = generateApiKey('rotated');
const rotatedNew = generateApiKey('rotated');

const keys = configSchema.parse({
  identity: {
    apiKeys: [
      {
        id: 'live',
        sha256: hashApiKey(live),
        tenant: 'acme',
        attributes: { department: 'claims' },
        labels: { owner: 'ops' },
      },
      { id: 'off', sha256: hashApiKey(off), tenant: 'acme', disabled: true },
      { id: 'dated', sha256: hashApiKey(dated), tenant: 'acme', expiresAt: at(T0 + HOUR) },
      {
        id: 'rotated',
        sha256: hashApiKey(rotatedNew),
        tenant: 'acme',
        previous: { sha256: hashApiKey(rotatedOld), expiresAt: at(T0 + 2 * HOUR) },
      },
    ],
  },
}).identity.apiKeys;

let now = T0;
const auth = createApiKeyAuthenticator(keys, { now: () => now });

function attempt(key: string): { principal?: string; error?: GateError; decisions: Decision[] } {
  const decisions: Decision[] = [];
  const ctx = { decide: (d: Decision) => decisions.push(d) } as unknown as RequestContext;
  try {
    return { principal: auth.authenticate(key, ctx).id, decisions };
  } catch (err) {
    if (!(err instanceof GateError)) throw err;
    return { error: err, decisions };
  }
}

afterEach(() => {
  now = T0;
  vi.mocked(crypto.hash).mockClear();
  vi.mocked(crypto.timingSafeEqual).mockClear();
});

describe('API key authenticator', () => {
  it('a known key gives its principal, attributes copied for policy, labels not', () => {
    const principal = auth.authenticate(live, { decide: () => {} } as unknown as RequestContext);
    expect(principal).toMatchObject({ id: 'live', tenant: 'acme', attributes: { department: 'claims' } });
    expect(JSON.stringify(principal)).not.toContain('ops');
  });

  const failures: { name: string; key: () => string; at?: number; reason?: string }[] = [
    { name: 'the old id-less format', key: () => `lmg_${'A'.repeat(43)}` },
    { name: 'a truncated key', key: () => live.slice(0, -1) },
    { name: 'an unknown id', key: () => generateApiKey('nobody') },
    { name: 'a key far longer than any key', key: () => `lmg_${'x'.repeat(10_000)}` },
    {
      name: 'a known id with a wrong secret',
      key: () => generateApiKey('live'),
      reason: REFUSAL_REASONS.secret,
    },
    {
      name: "another key's secret under a known id",
      key: () => `lmg_live_${off.slice(-43)}`,
      reason: REFUSAL_REASONS.secret,
    },
    { name: 'a disabled key', key: () => off, reason: REFUSAL_REASONS.disabled },
    { name: 'an expired key, at its expiry', key: () => dated, at: T0 + HOUR, reason: REFUSAL_REASONS.expired },
    {
      name: 'the previous secret after its rotation grace',
      key: () => rotatedOld,
      at: T0 + 2 * HOUR,
      reason: REFUSAL_REASONS.previousExpired,
    },
  ];
  for (const f of failures) {
    it(`${f.name}: 401 invalid_api_key, the same message, the same hashing and comparisons`, () => {
      if (f.at !== undefined) now = f.at;
      const r = attempt(f.key());
      expect(r.error).toMatchObject({ status: 401, code: 'invalid_api_key', message: INVALID_KEY_MESSAGE });
      // One SHA-256 of at most the longest well-formed key, then both comparisons, whatever failed.
      expect(crypto.hash).toHaveBeenCalledTimes(1);
      expect((vi.mocked(crypto.hash).mock.calls[0]![1] as string).length).toBeLessThanOrEqual(MAX_KEY_LENGTH);
      expect(crypto.timingSafeEqual).toHaveBeenCalledTimes(2);
      // The operator reads why in the audit record, for keys that exist; the caller never does.
      expect(r.decisions).toEqual(
        f.reason === undefined
          ? []
          : [
              {
                stage: 'identity.authenticate',
                ruleId: expect.stringMatching(/^identity\.apiKeys\./),
                effect: 'deny',
                reason: f.reason,
              },
            ],
      );
    });
  }

  it('a valid key costs the same hashing and comparisons as a refused one', () => {
    expect(attempt(live).principal).toBe('live');
    expect(crypto.hash).toHaveBeenCalledTimes(1);
    expect(crypto.timingSafeEqual).toHaveBeenCalledTimes(2);
  });

  it('expiry follows the clock: valid until the instant, refused from it', () => {
    now = T0 + HOUR - 1;
    expect(attempt(dated).principal).toBe('dated');
    now = T0 + HOUR;
    expect(attempt(dated).error?.code).toBe('invalid_api_key');
  });

  it('after a rotation with grace both secrets work until the grace ends, then only the new one', () => {
    expect(attempt(rotatedNew)).toEqual({ principal: 'rotated', decisions: [] });
    now = T0 + 2 * HOUR - 1;
    const old = attempt(rotatedOld);
    expect(old.principal).toBe('rotated');
    // Who still uses the old secret, while there is time to tell them.
    expect(old.decisions).toEqual([expect.objectContaining({ effect: 'allow', ruleId: 'identity.apiKeys.rotated' })]);
    now = T0 + 2 * HOUR;
    expect(attempt(rotatedOld).error?.code).toBe('invalid_api_key');
    expect(attempt(rotatedNew).principal).toBe('rotated');
  });

  it('a disabled or expired key refuses its previous secret too, whatever the grace', () => {
    const a = generateApiKey('k');
    const b = generateApiKey('k');
    const base = {
      id: 'k',
      sha256: hashApiKey(b),
      tenant: 't',
      previous: { sha256: hashApiKey(a), expiresAt: at(T0 + 9 * HOUR) },
    };
    for (const over of [{ disabled: true }, { expiresAt: at(T0) }]) {
      const [entry] = configSchema.parse({ identity: { apiKeys: [{ ...base, ...over }] } }).identity.apiKeys;
      const k = createApiKeyAuthenticator([entry!], { now: () => T0 });
      const ctx = { decide: () => {} } as unknown as RequestContext;
      for (const key of [a, b]) expect(() => k.authenticate(key, ctx)).toThrow(INVALID_KEY_MESSAGE);
    }
  });
});
