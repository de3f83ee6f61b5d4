import { describe, expect, it } from 'vitest';
import { apiKeyId, generateApiKey, hashApiKey, KEY_PREFIX, MAX_KEY_LENGTH } from './api-keys.ts';
import { presentedCredential } from './credentials.ts';

describe('api keys', () => {
  it('are lmg_<id>_<secret>: the id, then 32 random bytes as 43 base64url characters', () => {
    const a = generateApiKey('team-a');
    const b = generateApiKey('team-a');
    expect(a).toMatch(/^lmg_team-a_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice(-43), 'base64url')).toHaveLength(32);
  });

  it('an id may contain _ and ., up to 64 characters: the secret is the fixed-length tail', () => {
    for (const id of ['a', 'svc_batch_2', 'x.y-z', 'k'.repeat(64)]) {
      const key = generateApiKey(id);
      expect(apiKeyId(key)).toBe(id);
      expect(key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH);
    }
  });

  it('a secret that itself contains _ still parses to the right id', () => {
    expect(apiKeyId(`lmg_a_b_${'_'.repeat(43)}`)).toBe('a_b');
  });

  it('refuses to make a key for an id the config would refuse', () => {
    for (const id of ['', 'has space', 'k'.repeat(65), 'ü']) expect(() => generateApiKey(id)).toThrow(/key ids/);
  });

  const secret = 'A'.repeat(43);
  const malformedKeys: [string, string][] = [
    ['the old id-less format (lmg_ and 43 characters)', `lmg_${secret}`],
    ['truncated by one character', `lmg_a_${secret}`.slice(0, -1)],
    ['an empty id', `lmg__${secret}`],
    ['an id over 64 characters', `lmg_${'k'.repeat(65)}_${secret}`],
    ['no _ before the secret', `lmg_ab${secret}`],
    ['a character outside base64url in the secret', `lmg_a_${'A'.repeat(42)}=`],
    ['a character outside the id alphabet', `lmg_a/b_${secret}`],
    ['another prefix', `sk-_a_${secret}`],
    ['just the prefix', KEY_PREFIX],
  ];
  for (const [name, key] of malformedKeys)
    it(`apiKeyId: ${name} is malformed`, () => expect(apiKeyId(key)).toBeUndefined());

  it('hash is the hex SHA-256 of the whole key', () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
  const malformed = expect.objectContaining({ kind: 'malformed' });
  const table: [string, Record<string, string>, unknown][] = [
    ['bearer key', { authorization: 'Bearer lmg_x' }, { kind: 'api_key', key: 'lmg_x' }],
    ['bearer any case, extra spaces', { authorization: '  bearer   lmg_x  ' }, { kind: 'api_key', key: 'lmg_x' }],
    ['bearer JWT', { authorization: `Bearer ${jwt}` }, { kind: 'jwt', token: jwt }],
    ['basic is malformed', { authorization: 'Basic dXNlcjpwYXNz' }, malformed],
    ['bearer with no token', { authorization: 'Bearer ' }, malformed],
    ['bearer with two tokens', { authorization: 'Bearer a b' }, malformed],
    ['bearer neither key nor JWT', { authorization: 'Bearer sk-abc' }, malformed],
    ['x-api-key', { 'x-api-key': ' lmg_y ' }, { kind: 'api_key', key: 'lmg_y' }],
    ['a JWT in x-api-key', { 'x-api-key': jwt }, malformed],
    ['both headers are ambiguous', { authorization: 'Bearer lmg_a', 'x-api-key': 'lmg_b' }, malformed],
    ['empty x-api-key', { 'x-api-key': '  ' }, malformed],
    ['nothing', {}, { kind: 'none' }],
  ];
  for (const [name, headers, want] of table) {
    it(`presentedCredential: ${name}`, () =>
      expect(presentedCredential(new Map(Object.entries(headers)))).toEqual(want));
  }
});
