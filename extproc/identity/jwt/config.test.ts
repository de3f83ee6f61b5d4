// What identity.jwt accepts and refuses at load, before any key is fetched.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema } from '../../config/schema.ts';

const base = { issuer: 'https://idp.test', audiences: ['lm-gate'], tenant: 'acme' };
const problems = (issuers: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
  (configSchema.safeParse({ identity: { jwt: { issuers } }, ...extra }).error?.issues ?? []).map(
    (i) => `${i.path.slice(3).join('.')}: ${i.message}`,
  );

const rows: { name: string; issuers: Record<string, unknown>[]; extra?: Record<string, unknown>; want: RegExp[] }[] = [
  { name: 'an issuer with audiences and a tenant', issuers: [base], want: [] },
  { name: 'a tenant read from a claim', issuers: [{ ...base, tenant: { claim: 'tid' } }], want: [] },
  { name: 'no tenant', issuers: [{ ...base, tenant: undefined }], want: [/tenant/] },
  { name: 'no audiences', issuers: [{ ...base, audiences: [] }], want: [/audiences/] },
  { name: 'alg none cannot be configured', issuers: [{ ...base, algorithms: ['none'] }], want: [/algorithms/] },
  { name: 'HS256 cannot be configured', issuers: [{ ...base, algorithms: ['HS256'] }], want: [/algorithms/] },
  { name: 'discovery over plain http', issuers: [{ ...base, issuer: 'http://idp.test' }], want: [/issuer: .*https/] },
  {
    name: 'a JWKS over plain http',
    issuers: [{ ...base, jwksUri: 'http://idp.test/keys' }],
    want: [/jwksUri: .*https/],
  },
  {
    name: 'http on loopback with allowHttpLoopback (a test IdP)',
    issuers: [{ ...base, issuer: 'http://127.0.0.1:8080', allowHttpLoopback: true }],
    want: [],
  },
  {
    name: 'allowHttpLoopback does not open plain http to other hosts',
    issuers: [{ ...base, issuer: 'http://10.0.0.5', allowHttpLoopback: true }],
    want: [/127\.0\.0\.1/],
  },
  {
    name: 'an explicit JWKS lets the issuer be any string tokens carry',
    issuers: [{ ...base, issuer: 'acme-idp', jwksUri: 'https://idp.test/keys' }],
    want: [],
  },
  {
    name: 'a key URL with credentials',
    issuers: [{ ...base, jwksUri: 'https://u:p@idp.test/keys' }],
    want: [/credentials/],
  },
  { name: 'the same issuer twice', issuers: [base, base], want: [/duplicate issuer/] },
  { name: 'an unparsable claim path', issuers: [{ ...base, claims: { roles: 'a..b' } }], want: [/empty name/] },
  { name: 'an unknown preset', issuers: [{ ...base, preset: 'auth0' }], want: [/preset/] },
  {
    name: 'keyWaitMs must leave room under the message deadline',
    issuers: [base],
    extra: { server: { messageDeadlineMs: 80 } },
    want: [/keyWaitMs: must be under server.messageDeadlineMs/],
  },
];

describe('identity.jwt config', () => {
  for (const row of rows)
    it(`${row.want.length ? 'refuses' : 'accepts'} ${row.name}`, () => {
      const got = problems(row.issuers, row.extra);
      expect(got).toHaveLength(row.want.length);
      for (const [i, re] of row.want.entries()) expect(got[i]).toMatch(re);
    });

  it('the deadline check only applies when JWTs are configured', () => {
    expect(configSchema.safeParse({ server: { messageDeadlineMs: 50 } }).success).toBe(true);
  });
});

describe("README's JWT / OIDC example", () => {
  it('is a config the schema accepts', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### JWT / OIDC'));
    const yaml = section.split('```yaml\n')[1]!.split('```')[0]!;
    const doc = parse(yaml.replaceAll('<tenant-id>', 'tid-1').replaceAll('<application-id>', 'app-1'));
    expect(configSchema.safeParse(doc).error?.issues ?? []).toEqual([]);
    expect(doc.identity.jwt.issuers.map((i: { preset: string }) => i.preset)).toEqual(['okta', 'azure_ad', 'keycloak']);
  });
});
