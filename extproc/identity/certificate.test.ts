// Every URI SAN of a peer certificate, from real certificates openssl issued (public parts only).
import { describe, expect, it } from 'vitest';
import { certificateUriSans, uriSansIn } from './certificate.ts';

// subjectAltName URI:spiffe://example.org/ns/a/sa/x, URI:spiffe://example.org/ns/b/sa/y
const TWO_URIS = `-----BEGIN CERTIFICATE-----
MIIBsTCCAVegAwIBAgIUcnFOzHwq8LgA4w5fWlaJp0wI38gwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHVGVzdCBDQTAeFw0yNjExMjQwMDE2MzhaFw0yNjExMjYwMDE2
MzhaMA4xDDAKBgNVBAMMA3R3bzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOeL
siEGyDEpvMmxagXB0ZlimRTCV8QaL99zngPabVyfYBBfh6uCH9TC3jq9DBZeri3a
TfZ/CM1csgYOtyRIyQajgY4wgYswSQYDVR0RBEIwQIYec3BpZmZlOi8vZXhhbXBs
ZS5vcmcvbnMvYS9zYS94hh5zcGlmZmU6Ly9leGFtcGxlLm9yZy9ucy9iL3NhL3kw
HQYDVR0OBBYEFAaSuTKtXtoBcvweT27hUReypYrVMB8GA1UdIwQYMBaAFAlC2Blv
FWJlgEmr3J8+aMBx24o1MAoGCCqGSM49BAMCA0gAMEUCIQDXK4LacI5N5/TT34lF
XqZRwrv4OdQVZu74VnH8Qan6VgIgYuO0o3eKZoGrHGkb/JxPOep/nUy9GbDmDoIx
ZNLrqS8=
-----END CERTIFICATE-----
`;
// subjectAltName URI:spiffe://example.org/a,b (a comma inside), URI:http://x/q;y=1, DNS:foo
const COMMA_IN_URI = `-----BEGIN CERTIFICATE-----
MIIBnjCCAUSgAwIBAgIUcnFOzHwq8LgA4w5fWlaJp0wI38owCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHVGVzdCBDQTAeFw0yNjExMjQwMDE5MDBaFw0yNjExMjYwMDE5
MDBaMA4xDDAKBgNVBAMMA29kZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAX2
/4tdayI6DoTfYma3BtuG5eAqctM3gYUlqu0L3a0DoRYWJ58lBeXoU4IWqwg1XgH9
TT3bhZunshM1q5LsD3KjfDB6MDgGA1UdEQQxMC+GGHNwaWZmZTovL2V4YW1wbGUu
b3JnL2EsYoYOaHR0cDovL3gvcTt5PTGCA2ZvbzAdBgNVHQ4EFgQUGdtNNS/Wz7Tj
Lz1ppnFOaGwFMtgwHwYDVR0jBBgwFoAUCULYGW8VYmWASavcnz5owHHbijUwCgYI
KoZIzj0EAwIDSAAwRQIhAId54K/9a0KWaM/29VPpMtYrWOCzBEkZXTZRY69vH2o9
AiAyaQDoFLursxO0WrsROPLS+JqteOq7CEA6JhN8ipjO8A==
-----END CERTIFICATE-----
`;
// no subjectAltName extension at all
const NO_SAN = `-----BEGIN CERTIFICATE-----
MIIBKjCB0gIUcnFOzHwq8LgA4w5fWlaJp0wI38cwCgYIKoZIzj0EAwIwEjEQMA4G
A1UEAwwHVGVzdCBDQTAeFw0yNjExMjQwMDE2MzhaFw0yNjExMjYwMDE2MzhaMB8x
DTALBgNVBAoMBEFjbWUxDjAMBgNVBAMMBW5vdXJpMFkwEwYHKoZIzj0CAQYIKoZI
zj0DAQcDQgAE+Rf3uylKVfXMmnwR30OqNDbxiqSQPD4rsEy28ezQz78yOIVcXLPk
YnWghy5hkTDxGX7oja/0ToMRujZmyVHwvjAKBggqhkjOPQQDAgNHADBEAiAPXevA
nBCUQ4xjaqcUgxWQnQdKr+Sbyc17KCkOu1VyRgIgbuLVvUXliC2kaKSEWpOo9DiL
c6K8C1d130aom6nIq5g=
-----END CERTIFICATE-----
`;

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
