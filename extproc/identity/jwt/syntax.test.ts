// The strict compact-JWS reading: one row per way a token's text can be wrong.
import { describe, expect, it } from 'vitest';
import { makeSigningKey, mint, mintUnsigned } from '../../../test/harness/jwt-keys.ts';
import { JwtRejection } from './rejection.ts';
import { isCanonicalBase64url, parseCompactJws } from './syntax.ts';

const key = makeSigningKey('ES256', 'k1');
const claims = { iss: 'https://idp.test', sub: 'u', aud: 'gate', exp: 2e9 };
const good = mint(key, claims);
const [h, p, s] = good.split('.') as [string, string, string];
const b64 = (x: string) => Buffer.from(x).toString('base64url');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const rows: { name: string; token: string; reason?: string }[] = [
  { name: 'a well-formed token parses', token: good },
  { name: 'two segments', token: `${h}.${p}`, reason: 'malformed' },
  { name: 'four segments', token: `${h}.${p}.${s}.${s}`, reason: 'malformed' },
  { name: 'a five-part JWE', token: `${h}.${p}.${s}.${s}.${s}`, reason: 'malformed' },
  { name: 'an empty signature (alg none style)', token: `${h}.${p}.`, reason: 'malformed' },
  { name: 'an empty header', token: `.${p}.${s}`, reason: 'malformed' },
  { name: 'padding in the signature', token: `${h}.${p}.${s}==`, reason: 'malformed' },
  { name: 'a space inside the signature', token: `${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`, reason: 'malformed' },
  { name: 'a newline inside the payload', token: `${h}.${p.slice(0, 8)}\n${p.slice(8)}.${s}`, reason: 'malformed' },
  { name: 'standard base64 characters (+ /)', token: `${h}.${p}.${s.slice(0, -2)}+/`, reason: 'malformed' },
  {
    name: 'a non-canonical last character (unused bits set)',
    // 64-byte ES256 signature: 86 characters, the last carrying 2 unused bits.
    token: `${h}.${p}.${s.slice(0, -1)}${ALPHABET[ALPHABET.indexOf(s.at(-1)!) | 1]}`,
    reason: 'malformed',
  },
  { name: 'a segment length no base64 has (4n+1)', token: `${h}.${p}.${s}AAA`, reason: 'malformed' },
  { name: 'a header that is JSON but not an object', token: `${b64('["ES256"]')}.${p}.${s}`, reason: 'malformed' },
  { name: 'a payload that is not JSON', token: `${h}.${b64('{"iss":')}.${s}`, reason: 'malformed' },
  { name: 'a payload that is a string', token: `${h}.${b64('"x"')}.${s}`, reason: 'malformed' },
  {
    name: 'a payload that is not UTF-8',
    token: `${h}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.${s}`,
    reason: 'malformed',
  },
  {
    name: 'a claim repeated in the payload',
    token: mint(key, {}, { payloadJson: '{"iss":"https://idp.test","sub":"a","sub":"admin","exp":2000000000}' }),
    reason: 'duplicate_member',
  },
  {
    name: 'a claim repeated through an escape',
    token: mint(key, {}, { payloadJson: '{"iss":"https://idp.test","sub":"a","\\u0073ub":"admin"}' }),
    reason: 'duplicate_member',
  },
  {
    name: 'claims equal but for case',
    token: mint(key, {}, { payloadJson: '{"iss":"https://idp.test","sub":"a","SUB":"admin"}' }),
    reason: 'duplicate_member',
  },
  {
    name: 'a header member repeated',
    token: mint(key, claims, { headerJson: '{"alg":"none","alg":"ES256","kid":"k1"}' }),
    reason: 'duplicate_member',
  },
  { name: 'a crit header', token: mint(key, claims, { header: { crit: ['exp'] } }), reason: 'header' },
  { name: 'a jku header', token: mint(key, claims, { header: { jku: 'https://evil.test/keys' } }), reason: 'header' },
  { name: 'an x5u header', token: mint(key, claims, { header: { x5u: 'https://evil.test/cert' } }), reason: 'header' },
  { name: 'an embedded jwk header', token: mint(key, claims, { header: { jwk: key.jwk } }), reason: 'header' },
  { name: 'an embedded x5c chain', token: mint(key, claims, { header: { x5c: ['MIIB'] } }), reason: 'header' },
  { name: 'an unencoded payload (b64)', token: mint(key, claims, { header: { b64: false } }), reason: 'header' },
  { name: 'no alg', token: mint(key, claims, { header: { alg: undefined } }), reason: 'malformed' },
  { name: 'a kid that is not a string', token: mint(key, claims, { header: { kid: 7 } }), reason: 'malformed' },
  { name: 'a typ that is not a string', token: mint(key, claims, { header: { typ: ['JWT'] } }), reason: 'type' },
  { name: 'no iss', token: mint(key, { sub: 'u', exp: 2e9 }), reason: 'unknown_issuer' },
  { name: 'an iss that is not a string', token: mint(key, { iss: ['https://idp.test'] }), reason: 'unknown_issuer' },
  { name: 'larger than the cap', token: mint(key, { ...claims, pad: 'x'.repeat(9000) }), reason: 'too_large' },
  {
    name: 'nesting deeper than any claim set',
    token: mint(key, {}, { payloadJson: `{"iss":"i","x":${'['.repeat(40)}${']'.repeat(40)}}` }),
    reason: 'malformed',
  },
  { name: 'alg none parses (its alg is refused by the issuer allow-list)', token: `${mintUnsigned(claims)}AA` },
];

describe('parseCompactJws', () => {
  for (const row of rows) {
    it(`${row.reason ? 'refuses' : 'accepts'}: ${row.name}`, () => {
      if (row.reason === undefined) {
        const parsed = parseCompactJws(row.token, 8192);
        // What the verifier reads next: the algorithm and issuer, straight from the token.
        expect(parsed.alg).toBe(parsed.header.alg);
        expect(parsed.iss).toBe(parsed.payload.iss);
        return;
      }
      let caught: unknown;
      try {
        parseCompactJws(row.token, 8192);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(JwtRejection);
      expect((caught as JwtRejection).reason).toBe(row.reason);
      expect((caught as JwtRejection).status).toBe(401);
      expect((caught as JwtRejection).message).not.toContain(row.token.slice(0, 20));
    });
  }

  it('returns the header, payload and the members the gate routes on', () => {
    const jws = parseCompactJws(good, 8192);
    expect(jws).toMatchObject({ alg: 'ES256', kid: 'k1', typ: 'at+jwt', iss: 'https://idp.test' });
    expect(jws.payload).toEqual(claims);
  });
});

describe('isCanonicalBase64url', () => {
  const table: [string, boolean][] = [
    ['QQ', true], // "A": 2 characters, low 4 bits of the last zero
    ['QR', false], // the same byte with unused bits set: decoders accept it, we do not
    ['QUI', true],
    ['QUJ', false],
    ['QUJD', true],
    ['Q', false],
    ['', false],
    ['QQ==', false],
    ['Q+', false],
  ];
  for (const [s, ok] of table)
    it(`${JSON.stringify(s)} → ${ok}`, () => expect(isCanonicalBase64url(s, 0, s.length)).toBe(ok));
});
