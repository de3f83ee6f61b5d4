// Claim paths, the mapping of claims to the principal, and the IdP presets: one row per shape.
import { describe, expect, it } from 'vitest';
import { formatClaimPath, parseClaimPath, readClaim } from './claim-path.ts';
import { ClaimMapper } from './claims.ts';
import { jwtIssuerConfig } from './config.ts';

describe('claim paths', () => {
  const table: [string, string[] | string][] = [
    ['sub', ['sub']],
    ['realm_access.roles', ['realm_access', 'roles']],
    ['resource_access["my.client"].roles', ['resource_access', 'my.client', 'roles']],
    ['["https://example.com/roles"]', ['https://example.com/roles']],
    ['a["b"]["c"]', ['a', 'b', 'c']],
    ['["a\\"b"]', ['a"b']],
    ['', 'empty name'],
    ['a.', 'ends with'],
    ['.a', 'empty name'],
    ['a..b', 'empty name'],
    ['a["b"', 'unterminated'],
    ['a["b"]x', 'unexpected'],
    ['a[b]', 'unterminated'],
    ['[""]', 'empty name'],
  ];
  for (const [text, want] of table)
    it(`${JSON.stringify(text)} → ${typeof want === 'string' ? `error (${want})` : want.join(' / ')}`, () => {
      const r = parseClaimPath(text);
      if (typeof want === 'string') expect('error' in r && r.error).toContain(want);
      else expect(r).toEqual({ path: want });
    });

  it('reads own members of objects only: a path cannot reach a prototype', () => {
    const payload = JSON.parse('{"a":{"b":["x"]},"__proto__":{"polluted":"yes"},"n":[{"k":"v"}]}');
    expect(readClaim(payload, ['a', 'b'])).toEqual(['x']);
    expect(readClaim(payload, ['__proto__', 'polluted'])).toBe('yes'); // an own member named so, from JSON.parse
    expect(readClaim({}, ['constructor'])).toBeUndefined();
    expect(readClaim({}, ['toString'])).toBeUndefined();
    expect(readClaim(payload, ['n', '0', 'k'])).toBeUndefined(); // arrays are not indexed
    expect(readClaim(payload, ['a', 'b', 'length'])).toBeUndefined();
  });

  it('formats a path back as it can be written', () => {
    expect(formatClaimPath(['resource_access', 'my.client', 'roles'])).toBe('resource_access["my.client"].roles');
  });
});

const issuer = (over: Record<string, unknown>) =>
  jwtIssuerConfig.parse({ issuer: 'https://idp.test', audiences: ['lm-gate'], tenant: 'acme', ...over });
const map = (over: Record<string, unknown>, payload: Record<string, unknown>) =>
  new ClaimMapper(issuer(over)).map(payload, 'https://idp.test');

interface Row {
  name: string;
  issuer: Record<string, unknown>;
  payload: Record<string, unknown>;
  want: Record<string, unknown> | { problem: RegExp };
}

const rows: Row[] = [
  {
    name: 'defaults: id from sub, the issuer tenant, no team, user or roles',
    issuer: {},
    payload: { sub: 'u1', preferred_username: 'jane' },
    want: {
      id: 'u1',
      tenant: 'acme',
      team: undefined,
      user: undefined,
      roles: [],
      attributes: {},
      method: 'jwt',
      issuer: 'https://idp.test',
      scope: undefined,
    },
  },
  {
    name: 'every field by path, roles from a string and a list, attributes kept as text',
    issuer: {
      tenant: { claim: 'org.id' },
      claims: {
        id: 'oid',
        team: 'org.team',
        user: 'email',
        roles: ['role', 'groups'],
        attributes: { level: 'lvl', admin: 'adm', nested: 'org', client_id: 'azp' },
      },
    },
    payload: {
      oid: 'o-1',
      org: { id: 'acme', team: 'claims' },
      email: 'jane@acme.test',
      role: 'reader',
      groups: ['g1', 'reader', 7, 'g2'],
      lvl: 3,
      adm: false,
      azp: 'app',
    },
    want: {
      id: 'o-1',
      tenant: 'acme',
      team: 'claims',
      user: 'jane@acme.test',
      roles: ['reader', 'g1', 'g2'],
      attributes: { level: '3', admin: 'false', client_id: 'app' },
    },
  },
  {
    name: 'a list of paths: the first present wins',
    issuer: { claims: { id: ['uid', 'sub'] } },
    payload: { sub: 'client-1' },
    want: { id: 'client-1' },
  },
  {
    name: 'no id claim: refused, naming the claim',
    issuer: {},
    payload: { uid: 'x' },
    want: { problem: /sub claim/ },
  },
  {
    name: 'an id that is not a string is not an id',
    issuer: {},
    payload: { sub: 42 },
    want: { problem: /sub claim/ },
  },
  {
    name: 'an id with a control character is refused (it travels as a header)',
    issuer: {},
    payload: { sub: 'a\r\nx-lmgate-tenant: evil' },
    want: { problem: /sub claim/ },
  },
  {
    name: 'an id longer than 256 characters is refused',
    issuer: {},
    payload: { sub: 'x'.repeat(257) },
    want: { problem: /sub claim/ },
  },
  {
    name: 'tenant from a claim that is missing: refused',
    issuer: { tenant: { claim: 'tid' } },
    payload: { sub: 'u' },
    want: { problem: /tid claim for the tenant/ },
  },
  {
    name: 'namespaced claims through bracket paths',
    issuer: { claims: { roles: '["https://acme.test/roles"]' } },
    payload: { sub: 'u', 'https://acme.test/roles': ['admin'] },
    want: { roles: ['admin'] },
  },
  // ---- presets ----
  {
    name: 'okta: id from uid, user from sub (the login), roles from groups, client from cid',
    issuer: { preset: 'okta' },
    payload: {
      sub: 'jane@acme.test',
      uid: '00u1abc',
      cid: '0oa-client',
      groups: ['Everyone', 'llm-users'],
      scp: ['openid'],
    },
    want: {
      id: '00u1abc',
      tenant: 'acme',
      user: 'jane@acme.test',
      roles: ['Everyone', 'llm-users'],
      attributes: { client_id: '0oa-client' },
    },
  },
  {
    name: 'okta client_credentials token: no uid, id is sub (the client id)',
    issuer: { preset: 'okta' },
    payload: { sub: '0oa-client', cid: '0oa-client' },
    want: { id: '0oa-client', user: '0oa-client', roles: [] },
  },
  {
    name: 'azure_ad v2: tenant from tid, id from oid, roles and groups, user from preferred_username',
    issuer: { preset: 'azure_ad', tenant: { claim: 'tid' }, issuer: 'https://login.microsoftonline.com/t-1/v2.0' },
    payload: {
      tid: '72f988bf-tenant',
      oid: 'object-id-1',
      sub: 'pairwise-sub',
      roles: ['Model.Use'],
      groups: ['group-guid-1'],
      preferred_username: 'jane@contoso.test',
      azp: 'client-app',
    },
    want: {
      id: 'object-id-1',
      tenant: '72f988bf-tenant',
      user: 'jane@contoso.test',
      roles: ['Model.Use', 'group-guid-1'],
      attributes: { client_id: 'client-app' },
    },
  },
  {
    name: 'azure_ad app-only token: no oid user, no groups',
    issuer: { preset: 'azure_ad', tenant: { claim: 'tid' } },
    payload: { tid: 't', sub: 'sp-sub', oid: 'sp-oid', roles: ['Model.Use'] },
    want: { id: 'sp-oid', tenant: 't', user: undefined, roles: ['Model.Use'] },
  },
  {
    name: 'tenant from the first of several claims present',
    issuer: { preset: 'azure_ad', tenant: { claim: ['extension_org', 'tid'] } },
    payload: { tid: 't', oid: 'o', extension_org: 'org-9' },
    want: { tenant: 'org-9' },
  },
  {
    name: "keycloak: realm roles and the gate's client roles (its audience), preferred_username",
    issuer: { preset: 'keycloak' },
    payload: {
      sub: 'kc-uuid',
      preferred_username: 'jane',
      realm_access: { roles: ['offline_access', 'llm-user'] },
      resource_access: { 'lm-gate': { roles: ['chat'] }, account: { roles: ['manage-account'] } },
      azp: 'cli',
    },
    want: {
      id: 'kc-uuid',
      user: 'jane',
      roles: ['offline_access', 'llm-user', 'chat'],
      attributes: { client_id: 'cli' },
    },
  },
  {
    name: 'a preset field overridden by the issuer claims, the rest kept',
    issuer: { preset: 'keycloak', claims: { team: 'department', roles: 'realm_access.roles' } },
    payload: {
      sub: 'kc',
      preferred_username: 'jane',
      department: 'claims',
      realm_access: { roles: ['a'] },
      resource_access: { 'lm-gate': { roles: ['b'] } },
    },
    want: { id: 'kc', user: 'jane', team: 'claims', roles: ['a'] },
  },
];

describe('ClaimMapper', () => {
  for (const row of rows)
    it(row.name, () => {
      const got = map(row.issuer, row.payload);
      if ('problem' in row.want) {
        expect('problem' in got && got.problem).toMatch(row.want.problem as RegExp);
        return;
      }
      expect(got).toMatchObject(row.want);
      if ('roles' in row.want) expect((got as { roles: unknown }).roles).toEqual(row.want.roles);
      if ('attributes' in row.want) expect((got as { attributes: unknown }).attributes).toEqual(row.want.attributes);
    });

  it('at most 256 roles are kept', () => {
    const got = map({ claims: { roles: 'r' } }, { sub: 'u', r: Array.from({ length: 1000 }, (_, i) => `r${i}`) });
    expect((got as { roles: readonly string[] }).roles).toHaveLength(256);
  });
});
