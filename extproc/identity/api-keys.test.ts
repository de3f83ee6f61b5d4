import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey, indexApiKeys, KEY_PREFIX, presentedKey } from './api-keys.ts';

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

  const table: [string, Record<string, string>, string | undefined][] = [
    ['bearer', { authorization: 'Bearer lmg_x' }, 'lmg_x'],
    ['bearer any case, extra spaces', { authorization: '  bearer   lmg_x  ' }, 'lmg_x'],
    ['basic is not a key', { authorization: 'Basic dXNlcjpwYXNz' }, undefined],
    ['bearer with no token', { authorization: 'Bearer ' }, undefined],
    ['bearer with two tokens', { authorization: 'Bearer a b' }, undefined],
    ['x-api-key', { 'x-api-key': ' lmg_y ' }, 'lmg_y'],
    ['authorization wins over x-api-key', { authorization: 'Bearer a', 'x-api-key': 'b' }, 'a'],
    ['empty x-api-key', { 'x-api-key': '  ' }, undefined],
    ['nothing', {}, undefined],
  ];
  for (const [name, headers, want] of table) {
    it(`presentedKey: ${name}`, () => expect(presentedKey(new Map(Object.entries(headers)))).toBe(want));
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
