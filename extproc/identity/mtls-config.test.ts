// identity.mtls is checked when the config loads: a rule that could never match, a placeholder
// nothing fills, or trusting XFCC without saying Envoy sanitises it, is refused there.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.ts';

const rule = { trustDomain: 'example.org', path: '/ns/{ns}/sa/{sa}', tenant: '{ns}', user: '{sa}' };
const subject = { issuer: 'corp-ca', match: { O: 'Acme', CN: '{cn}' }, tenant: 'acme', user: '{cn}' };

const problems = (mtls: unknown): string[] => {
  const r = configSchema.safeParse({ audit: { path: '-' }, identity: { mtls } });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('identity.mtls config', () => {
  it('accepts SPIFFE and subject rules, reading attributes by default', () => {
    expect(problems({ spiffe: [rule], subjects: [subject] })).toEqual([]);
    const c = configSchema.parse({ audit: { path: '-' }, identity: { mtls: { spiffe: [rule] } } });
    expect(c.identity.mtls).toMatchObject({ source: 'attributes', subjects: [], spiffe: [{ roles: [] }] });
  });
  it('is absent unless configured', () => {
    expect(configSchema.parse({ audit: { path: '-' } }).identity.mtls).toBeUndefined();
  });
  it('accepts xfcc with the SANITIZE_SET statement', () =>
    expect(problems({ source: 'xfcc', envoyForwardClientCertDetails: 'SANITIZE_SET', spiffe: [rule] })).toEqual([]));

  const refused: [string, unknown, string][] = [
    [
      'xfcc without stating Envoy sanitises and sets it',
      { source: 'xfcc', spiffe: [rule] },
      'identity.mtls.envoyForwardClientCertDetails: source: xfcc trusts a request header',
    ],
    [
      'any forward_client_cert_details but SANITIZE_SET',
      { source: 'xfcc', envoyForwardClientCertDetails: 'APPEND_FORWARD', spiffe: [rule] },
      'identity.mtls.envoyForwardClientCertDetails',
    ],
    ['no rule at all', { source: 'attributes' }, 'identity.mtls: no spiffe or subjects rule'],
    [
      'an upper-case trust domain',
      { spiffe: [{ ...rule, trustDomain: 'Example.org' }] },
      'identity.mtls.spiffe.0.trustDomain',
    ],
    [
      'a path without a leading slash',
      { spiffe: [{ ...rule, path: 'ns/{ns}/sa/{sa}' }] },
      'identity.mtls.spiffe.0.path',
    ],
    [
      'a segment that is not a SPIFFE segment',
      { spiffe: [{ ...rule, path: '/ns/{ns}/sa/a*' }] },
      'identity.mtls.spiffe.0.path',
    ],
    ['an empty segment', { spiffe: [{ ...rule, path: '/ns//{ns}/sa/{sa}' }] }, 'identity.mtls.spiffe.0.path'],
    ['a name captured twice', { spiffe: [{ ...rule, path: '/ns/{ns}/sa/{ns}', user: 'x' }] }, '{ns} captured twice'],
    [
      'a placeholder nothing captures',
      { spiffe: [{ ...rule, team: '{team}' }] },
      'identity.mtls.spiffe.0.team: {team} is not captured',
    ],
    [
      'a role placeholder nothing captures',
      { spiffe: [{ ...rule, roles: ['{x}'] }] },
      'identity.mtls.spiffe.0.roles.0',
    ],
    [
      'a tenant that is not printable ASCII',
      { spiffe: [{ ...rule, tenant: 'acmé' }] },
      'identity.mtls.spiffe.0.tenant',
    ],
    ['a subject rule matching nothing', { subjects: [{ ...subject, match: {} }] }, 'identity.mtls.subjects.0.match'],
    [
      'a subject attribute named twice in two cases',
      { subjects: [{ ...subject, match: { CN: '{cn}', cn: 'x' } }] },
      'identity.mtls.subjects.0.match.cn: cn named twice',
    ],
    ['an unknown field', { spiffe: [rule], trustAll: true }, 'identity.mtls'],
  ];
  for (const [name, mtls, want] of refused) {
    it(`refuses ${name}`, () => expect(problems(mtls).join('\n')).toContain(want));
  }
});
