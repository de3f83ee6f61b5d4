// Every built-in detector runs in time linear in its input (detectors.ts says why each shape
// is safe for a backtracking engine). Each gets pathological 1 MB inputs shaped like the
// start of its own entity, repeated or stretched, and must scan them under a time bound far
// below what quadratic work on 1 MB would take (minutes).
import { describe, expect, it } from 'vitest';
import { compileDlp } from './compile.ts';
import { BUILTIN_TYPES } from './types.ts';

const MB = 1 << 20;
const fill = (unit: string) => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);

const INPUTS: Record<string, string> = {
  digits: fill('1'),
  'spaced digits': fill('1 '),
  'dashed digits': fill('1-'),
  'digit groups': fill('4111 1111 '),
  'phone-like runs': fill('(415) 555-26 '),
  letters: fill('a'),
  'upper alnum': fill('A1'),
  'iban-like': fill('DE89 3704 '),
  'dotted words': fill('a.'),
  'at-signs': fill('a@a.'),
  'email-ish local parts': fill(`${'x'.repeat(60)}@`),
  'dotted numbers': fill('1.'),
  colons: fill('a:'),
  'hex and colons': fill('ab12:'),
  'aws prefixes': fill('AKIA'),
  'secret settings': fill('secret_access_key='),
  'token settings': fill('token='),
  'keyword then long value': `api_key=${fill('a1')}`,
  'gh prefixes': fill('ghp_'),
  'slack prefixes': fill('xoxb-1234567890-'),
  'stripe prefixes': fill('sk_live_'),
  'gcp prefixes': fill('AIza'),
  'pem begins': fill('-----BEGIN RSA PRIVATE KEY-----\n'),
  'pem begin, no end': `-----BEGIN PRIVATE KEY-----\n${fill('MIIE\n')}`,
  'jwt-ish': fill('eyJa.'),
  'jwt header only': `eyJ${fill('a')}`,
  'dsn-ish': fill('a://a:a@'),
  'dsn schemes': fill('postgres://'),
  'dob keywords': fill('born on '),
  'dob keyword and digits': fill('DOB: 12/'),
  'zero-width': fill('a\u200b'),
  'full-width digits': fill('１'),
  cjk: fill('出生日期数据'),
};

describe('linear time on 1 MB pathological inputs', () => {
  it.each(BUILTIN_TYPES.map((t) => [t]))('%s', (type) => {
    const only = compileDlp({
      name: type,
      detectors: Object.fromEntries(BUILTIN_TYPES.filter((t) => t !== type).map((t) => [t, 'off'])),
    });
    const slow: string[] = [];
    for (const [name, input] of Object.entries(INPUTS)) {
      const started = performance.now();
      only.scan(input);
      const ms = performance.now() - started;
      // Generous for a loaded 2-core machine; quadratic work on 1 MB takes minutes.
      if (ms > 2500) slow.push(`${name}: ${ms.toFixed(0)} ms`);
    }
    expect(slow).toEqual([]);
  });

  it('custom patterns run on RE2: a catastrophic-backtracking pattern stays linear', () => {
    const s = compileDlp({ name: 'c', patterns: [{ name: 'EVIL', regex: '(a+)+b', maxLength: 64 }] });
    const started = performance.now();
    s.scan(fill('a'));
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
