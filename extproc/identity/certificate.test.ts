// Every URI SAN of a peer certificate, from real certificates openssl issued (public parts only).
import { describe, expect, it } from 'vitest';
import { COMMA_IN_URI, NO_SAN, TWO_URIS } from '../../test/fixtures/client-certificates.ts';
import { certificateUriSans, uriSansIn } from './certificate.ts';

describe('certificateUriSans', () => {
  it('finds both URI SANs of a certificate Envoy would show only the first of', () =>
    expect(certificateUriSans(TWO_URIS)).toEqual({
      ok: true,
      uris: ['spiffe://example.org/ns/a/sa/x', 'spiffe://example.org/ns/b/sa/y'],
    }));
  it('reads a URI holding a comma as one URI, and skips DNS names', () =>
    expect(certificateUriSans(COMMA_IN_URI)).toEqual({
      ok: true,
      uris: ['spiffe://example.org/a,b', 'http://x/q;y=1'],
    }));
  it('a certificate without a SAN extension has none', () =>
    expect(certificateUriSans(NO_SAN)).toEqual({ ok: true, uris: [] }));
  it('accepts URL-encoded PEM as XFCC writes it', () =>
    expect(certificateUriSans(encodeURIComponent(TWO_URIS))).toMatchObject({ ok: true, uris: { length: 2 } }));
  it('refuses what does not parse', () => {
    expect(certificateUriSans('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n').ok).toBe(false);
    expect(certificateUriSans('').ok).toBe(false);
  });
});

describe('uriSansIn (Node subjectAltName text)', () => {
  const rows: [string, string, string[] | false][] = [
    ['one URI', 'URI:spiffe://a/b', ['spiffe://a/b']],
    ['mixed kinds', 'DNS:x, URI:spiffe://a/b, IP Address:127.0.0.1', ['spiffe://a/b']],
    [
      'a JSON-quoted URI with an escaped quote and comma',
      'URI:"spiffe://a/\\"b\\", c", URI:spiffe://a/d',
      ['spiffe://a/"b", c', 'spiffe://a/d'],
    ],
    ['an unterminated quote', 'URI:"spiffe://a/b', false],
    ['garbage after a quoted value', 'URI:"a"b', false],
    ['no type', 'spiffe', false],
  ];
  for (const [name, text, want] of rows) {
    it(name, () =>
      expect(uriSansIn(text)).toEqual(
        want === false ? expect.objectContaining({ ok: false }) : { ok: true, uris: want },
      ),
    );
  }
});
