// Which published keys the gate keeps, and which key a token gets: a key is only ever used with an
// algorithm of its own type.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeSigningKey } from '../../../test/harness/jwt-keys.ts';
import { importJwk, importJwks, KeySet, MAX_KEYS } from './key-set.ts';

const rsa = makeSigningKey('RS256', 'rsa');
const ec = makeSigningKey('ES256', 'ec');
const ed = makeSigningKey('EdDSA', 'ed');
const ec384 = makeSigningKey('ES384', 'ec384');

describe('importJwk', () => {
  const weakRsa = {
    ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }),
    kid: 'weak',
  };
  const table: { name: string; jwk: unknown; skipped?: RegExp }[] = [
    { name: 'an RSA signing key', jwk: rsa.jwk },
    { name: 'a P-256 key', jwk: ec.jwk },
    { name: 'an Ed25519 key', jwk: ed.jwk },
    { name: 'a key without use, alg or kid', jwk: { kty: rsa.jwk.kty, n: rsa.jwk.n, e: rsa.jwk.e } },
    { name: 'private members are dropped, the public key kept', jwk: rsa.privateJwk },
    {
      name: 'a symmetric (oct) key: never, so no token can be HMAC-verified',
      jwk: { kty: 'oct', k: 'c2VjcmV0', kid: 'h' },
      skipped: /kty/,
    },
    { name: 'an encryption key', jwk: { ...rsa.jwk, use: 'enc' }, skipped: /use/ },
    { name: 'key_ops without verify', jwk: { ...rsa.jwk, key_ops: ['encrypt'] }, skipped: /key_ops/ },
    { name: 'an alg of another family than the key', jwk: { ...rsa.jwk, alg: 'ES256' }, skipped: /does not fit/ },
    { name: 'an HMAC alg on an RSA key', jwk: { ...rsa.jwk, alg: 'HS256' }, skipped: /alg/ },
    { name: 'an RSA key under 2048 bits', jwk: weakRsa, skipped: /2048/ },
    { name: 'an Ed448 key', jwk: { kty: 'OKP', crv: 'Ed448', x: 'AA' }, skipped: /kty\/crv/ },
    {
      name: 'an EC point not on the curve',
      jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' },
      skipped: /not a valid public key/,
    },
    { name: 'not an object', jwk: 'key', skipped: /not an object/ },
  ];
  for (const row of table)
    it(`${row.skipped ? 'skips' : 'keeps'} ${row.name}`, () => {
      const r = importJwk(row.jwk);
      if (row.skipped) expect(r).toMatch(row.skipped);
      else expect(typeof r).toBe('object');
    });

  it('a JWKS: usable keys kept, the rest named; at most MAX_KEYS', () => {
    const r = importJwks({ keys: [rsa.jwk, { kty: 'oct', k: 'AA' }, ec.jwk] });
    expect('keys' in r && r.keys.map((k) => k.kid)).toEqual(['rsa', 'ec']);
    expect('skipped' in r && r.skipped).toHaveLength(1);
    const many = importJwks({ keys: Array.from({ length: MAX_KEYS + 5 }, () => ec.jwk) });
    expect('keys' in many && many.keys).toHaveLength(MAX_KEYS);
    expect(importJwks({ keys: 'x' })).toHaveProperty('error');
    expect(importJwks([rsa.jwk])).toHaveProperty('error');
  });
});

describe('KeySet.find', () => {
  const imported = (jwks: unknown[]) => {
    const r = importJwks({ keys: jwks });
    if ('error' in r) throw new Error(r.error);
    return new KeySet(r.keys);
  };
  const set = imported([rsa.jwk, ec.jwk, ed.jwk, ec384.jwk]);
  const table: [string, string | undefined, string, string | undefined][] = [
    ['the kid and a fitting alg', 'rsa', 'RS256', 'rsa'],
    ['a JWK that names RS256 is not used for PS256', 'rsa', 'PS256', undefined],
    ['EdDSA and Ed25519 are the same signature', 'ed', 'Ed25519', 'ed'],
    ['an unknown kid', 'nope', 'RS256', undefined],
    ['a kid whose key is of another type (ES256 on an RSA key)', 'rsa', 'ES256', undefined],
    ['HS256 never finds a key', 'rsa', 'HS256', undefined],
    ['none never finds a key', 'rsa', 'none', undefined],
    ['ES256 on a P-384 key', 'ec384', 'ES256', undefined],
    ['no kid, one key of the type: that key', undefined, 'EdDSA', 'ed'],
    ['no kid, the one P-256 key', undefined, 'ES256', 'ec'],
  ];
  for (const [name, kid, alg, want] of table) it(name, () => expect(set.find(kid, alg)?.kid).toBe(want));

  it('no kid with two keys of the same type is ambiguous, and refused', () => {
    const two = imported([ec.jwk, makeSigningKey('ES256', 'ec2').jwk]);
    expect(two.find(undefined, 'ES256')).toBeUndefined();
    expect(two.find('ec2', 'ES256')?.kid).toBe('ec2');
  });

  it('a JWK without alg serves every algorithm of its family', () => {
    const { alg: _, ...noAlg } = rsa.jwk;
    const s = imported([noAlg]);
    expect(s.find('rsa', 'PS256')?.kid).toBe('rsa');
    expect(s.find('rsa', 'RS512')?.kid).toBe('rsa');
  });
});
