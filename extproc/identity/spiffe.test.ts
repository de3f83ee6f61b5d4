// SPIFFE ID syntax, one row per rule of the specification the parser enforces.
import { describe, expect, it } from 'vitest';
import { parseSpiffeId } from './spiffe.ts';

describe('parseSpiffeId', () => {
  const valid: [string, string, string[]][] = [
    ['spiffe://example.org/ns/prod/sa/billing', 'example.org', ['ns', 'prod', 'sa', 'billing']],
    [
      'spiffe://prod.example-1.org/region/eu_west/service/a.b',
      'prod.example-1.org',
      ['region', 'eu_west', 'service', 'a.b'],
    ],
    ['spiffe://td/x', 'td', ['x']],
    ['spiffe://td/UPPER/case', 'td', ['UPPER', 'case']],
  ];
  for (const [id, trustDomain, segments] of valid) {
    it(`reads ${id}`, () => expect(parseSpiffeId(id)).toEqual({ ok: true, value: { id, trustDomain, segments } }));
  }
  const invalid: [string, string][] = [
    ['another scheme', 'https://example.org/ns/a/sa/b'],
    ['an upper-case scheme', 'SPIFFE://example.org/a'],
    ['an upper-case trust domain', 'spiffe://Example.org/a'],
    ['no path (a trust domain, not a workload)', 'spiffe://example.org'],
    ['a trailing slash', 'spiffe://example.org/a/'],
    ['an empty segment', 'spiffe://example.org/a//b'],
    ['a dot segment', 'spiffe://example.org/a/./b'],
    ['a dot-dot segment', 'spiffe://example.org/a/../b'],
    ['a port', 'spiffe://example.org:8443/a'],
    ['user info', 'spiffe://user@example.org/a'],
    ['a query', 'spiffe://example.org/a?b=c'],
    ['a fragment', 'spiffe://example.org/a#b'],
    ['percent-encoding', 'spiffe://example.org/a%2Fb'],
    ['a comma (would need quoting in XFCC)', 'spiffe://example.org/a,b'],
    ['a semicolon', 'spiffe://example.org/a;b'],
    ['an empty trust domain', 'spiffe:///a'],
    ['the empty string', ''],
    ['over 2048 bytes', `spiffe://example.org/${'a'.repeat(2048)}`],
  ];
  for (const [name, id] of invalid) {
    it(`refuses ${name}`, () => expect(parseSpiffeId(id)).toMatchObject({ ok: false }));
  }
});
