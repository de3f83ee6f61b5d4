// Certificate subjects as Envoy prints them (RFC 2253), and as XFCC passes them on.
import { describe, expect, it } from 'vitest';
import { formatDn, parseDn } from './dn.ts';

const attrs = (...pairs: [string, string, number][]) => pairs.map(([type, value, rdn]) => ({ type, value, rdn }));

describe('parseDn', () => {
  const valid: [string, string, ReturnType<typeof attrs>][] = [
    ["Envoy's attribute", 'CN=billing,O=Acme', attrs(['CN', 'billing', 0], ['O', 'Acme', 1])],
    ['an empty subject', '', []],
    [
      'escaped separators and quotes (attribute form)',
      'CN=weird\\, \\"quoted\\"\\;x=y',
      attrs(['CN', 'weird, "quoted";x=y', 0]),
    ],
    [
      'the same subject as XFCC passes it (bare quotes)',
      'CN=weird\\, "quoted"\\;x=y',
      attrs(['CN', 'weird, "quoted";x=y', 0]),
    ],
    ['hex-escaped UTF-8', 'CN=Jos\\C3\\A9', attrs(['CN', 'José', 0])],
    ['a multi-valued RDN', 'CN=a+UID=b,O=c', attrs(['CN', 'a', 0], ['UID', 'b', 0], ['O', 'c', 1])],
    ['types in any case, numeric OIDs', 'cn=a,2.5.4.10=b', attrs(['CN', 'a', 0], ['2.5.4.10', 'b', 1])],
    ['an escaped backslash', 'CN=a\\\\b', attrs(['CN', 'a\\b', 0])],
    ['an empty value', 'CN=', attrs(['CN', '', 0])],
  ];
  for (const [name, dn, want] of valid) {
    it(`reads ${name}`, () => expect(parseDn(dn)).toEqual({ ok: true, attributes: want }));
  }
  const invalid: [string, string][] = [
    ['no "="', 'CN'],
    ['an invalid type', 'C N=a'],
    ['a hex-encoded BER value', 'CN=#0403616263'],
    ['a dangling backslash', 'CN=a\\'],
    ['a bad hex escape', 'CN=a\\zz'],
    ['invalid UTF-8 from hex escapes', 'CN=\\C3'],
    ['a trailing comma', 'CN=a,'],
  ];
  for (const [name, dn] of invalid) {
    it(`refuses ${name}`, () => expect(parseDn(dn)).toMatchObject({ ok: false }));
  }
});

describe('formatDn', () => {
  it('spells the attribute form and the XFCC form of one subject alike', () => {
    const a = parseDn('CN=weird\\, \\"quoted\\"\\;x=y,O=Acme');
    const x = parseDn('CN=weird\\, "quoted"\\;x=y,O=Acme');
    if (!a.ok || !x.ok) throw new Error('parse');
    expect(formatDn(a.attributes)).toBe('CN=weird\\, \\"quoted\\"\\;x\\=y,O=Acme');
    expect(formatDn(x.attributes)).toBe(formatDn(a.attributes));
  });
  it('keeps multi-valued RDNs and escapes leading # and spaces', () => {
    const d = parseDn('CN=\\#a+UID=\\ b\\ ,O=c');
    if (!d.ok) throw new Error('parse');
    expect(formatDn(d.attributes)).toBe('CN=\\#a+UID=\\ b\\ ,O=c');
  });
});
