import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey, indexApiKeys, KEY_PREFIX } from './api-keys.ts';
import { presentedCredential } from './credentials.ts';

describe('api keys', () => {
  it('are prefixed, random, 256-bit', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.startsWith(KEY_PREFIX)).toBe(true);
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice(KEY_PREFIX.length), 'base64url')).toHaveLength(32);
  });

  it('hash is the hex SHA-256 of the key', () => {
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
  it('index leaves disabled keys out', () => {
    const base = { tenant: 't', roles: [], models: ['*'], endpoints: ['*' as const] };
    const idx = indexApiKeys([
      { ...base, id: 'on', sha256: hashApiKey('on'), disabled: false },
      { ...base, id: 'off', sha256: hashApiKey('off'), disabled: true },
    ]);
    expect(idx.get(hashApiKey('on'))?.id).toBe('on');
    expect(idx.has(hashApiKey('off'))).toBe(false);
  });
});
