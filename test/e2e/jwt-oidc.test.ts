// End to end with real OpenID providers: access tokens a real OIDC implementation issues (found by
// the gate through discovery, signed with RS256, ES256 and EdDSA) go through real Envoy as the
// openai client's apiKey; Okta-, Azure AD- and Keycloak-shaped claims map to the principal the
// audit records; a key rotation at the IdP is picked up by the unknown-kid refetch; an IdP that
// goes down leaves cached keys working; a config reload keeps the cached keys; and steady state
// fetches no keys on the request path.
import { readFile } from 'node:fs/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { makeSigningKey, mint, validClaims } from '../harness/jwt-keys.ts';
import { AUDIENCE, TestOidc, TOKEN_ALGS } from '../harness/oidc.ts';
import { waitFor } from '../harness/ports.ts';
import { type Stack, startStack } from '../harness/stack.ts';

let okta: TestOidc;
let azure: TestOidc;
let keycloak: TestOidc;
let rotating: TestOidc;
let stack: Stack;

const issuerConfig = (idp: TestOidc, over: Record<string, unknown>) => ({
  issuer: idp.issuer,
  allowHttpLoopback: true,
  audiences: [AUDIENCE],
  algorithms: ['RS256', 'ES256', 'EdDSA'],
  ...over,
});

beforeAll(async () => {
  okta = await TestOidc.start({
    clients: {
      'okta-app': {
        sub: 'jane@acme.test',
        claims: { uid: '00u-jane', cid: 'okta-app', groups: ['Everyone', 'llm-users'], department: 'research' },
      },
    },
  });
  azure = await TestOidc.start({
    clients: {
      'azure-app': {
        sub: 'pairwise-bob',
        claims: {
          tid: 'contoso-tenant-id',
          oid: 'oid-bob',
          roles: ['Model.Use'],
          groups: ['group-guid-1'],
          preferred_username: 'bob@contoso.test',
          azp: 'azure-app',
          department: 'claims',
        },
      },
    },
  });
  keycloak = await TestOidc.start({
    clients: {
      'kc-app': {
        sub: 'kc-uuid-carol',
        claims: {
          preferred_username: 'carol',
          realm_access: { roles: ['offline_access', 'llm-user'] },
          resource_access: { [AUDIENCE]: { roles: ['chat'] }, account: { roles: ['manage-account'] } },
          azp: 'kc-app',
          team: 'support',
        },
      },
    },
  });
  rotating = await TestOidc.start({ clients: { app: { sub: 'svc-1' } } });
  stack = await startStack({
    keys: [],
    gateExtra: {
      identity: {
        jwt: {
          issuers: [
            issuerConfig(okta, { preset: 'okta', tenant: 'acme', claims: { team: 'department' } }),
            issuerConfig(azure, { preset: 'azure_ad', tenant: { claim: 'tid' }, claims: { team: 'department' } }),
            issuerConfig(keycloak, { preset: 'keycloak', tenant: 'initech', claims: { team: 'team' } }),
            issuerConfig(rotating, { tenant: 'rotors' }),
          ],
        },
      },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  for (const idp of [okta, azure, keycloak, rotating]) await idp?.stop();
});

const client = (token: string) => new OpenAI({ baseURL: stack.baseURL, apiKey: token, maxRetries: 0 });

/** A chat completion as `token`; its audit record. */
async function chatAs(token: string): Promise<Record<string, any>> {
  const res = await client(token)
    .chat.completions.create({ model: 'mock-small', messages: [{ role: 'user', content: 'hello' }] })
    .withResponse();
  expect(res.data.choices[0]?.message.content).toBeTruthy();
  const upstream = stack.mock.received.filter((r) => r.path === '/v1/chat/completions').at(-1)!;
  expect(upstream.headers.authorization).toBeUndefined(); // the token never goes upstream
  return stack.gate.auditFor(upstream.headers['x-request-id'] as string);
}

/** lmgate_jwks_fetches_total by issuer, reason and result, from the gate's /metrics. */
async function jwksFetches(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await stack.gate.metrics()).split('\n')) {
    const m = /^lmgate_jwks_fetches_total\{(.*)\} (\d+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    out.set(`${labels.issuer} ${labels.reason} ${labels.result}`, Number(m[2]));
  }
  return out;
}
const fetchCount = (f: Map<string, number>, issuer: string, reason: string, result = 'ok') =>
  f.get(`${issuer} ${reason} ${result}`) ?? 0;

describe('JWT access tokens from a real OpenID provider, through real Envoy', () => {
  for (const alg of TOKEN_ALGS)
    it(`an ${alg} access token as the openai apiKey: 200, and the audit names the caller`, async () => {
      const rec = await chatAs(await okta.token('okta-app', alg));
      expect(rec).toMatchObject({
        status: 200,
        outcome: 'completed',
        principal: { method: 'jwt', issuer: okta.issuer, key_id: null, tenant: 'acme' },
      });
    });

  it('Okta-shaped claims: id from uid, user from sub (the login), roles from groups, team from a claim', async () => {
    const rec = await chatAs(await okta.token('okta-app', 'RS256'));
    expect(rec.principal).toEqual({
      id: '00u-jane',
      key_id: null,
      tenant: 'acme',
      team: 'research',
      user: 'jane@acme.test',
      roles: ['Everyone', 'llm-users'],
      method: 'jwt',
      issuer: okta.issuer,
    });
  });

  it('Azure AD-shaped claims: tenant from tid, id from oid, roles and groups, preferred_username', async () => {
    const rec = await chatAs(await azure.token('azure-app', 'ES256'));
    expect(rec.principal).toEqual({
      id: 'oid-bob',
      key_id: null,
      tenant: 'contoso-tenant-id',
      team: 'claims',
      user: 'bob@contoso.test',
      roles: ['Model.Use', 'group-guid-1'],
      method: 'jwt',
      issuer: azure.issuer,
    });
    const upstream = stack.mock.received.at(-1)!;
    expect(upstream.headers['x-lmgate-tenant']).toBe('contoso-tenant-id');
    expect(upstream.headers['x-lmgate-principal']).toBe('oid-bob');
  });

  it("Keycloak-shaped claims: realm roles and the gate's client roles, preferred_username", async () => {
    const rec = await chatAs(await keycloak.token('kc-app', 'EdDSA'));
    expect(rec.principal).toEqual({
      id: 'kc-uuid-carol',
      key_id: null,
      tenant: 'initech',
      team: 'support',
      user: 'carol',
      roles: ['offline_access', 'llm-user', 'chat'],
      method: 'jwt',
      issuer: keycloak.issuer,
    });
  });

  it('steady state: N requests fetch no keys (lmgate_jwks_fetches_total unchanged)', async () => {
    const tokens = await Promise.all(TOKEN_ALGS.map((alg) => okta.token('okta-app', alg)));
    tokens.push(await azure.token('azure-app'), await keycloak.token('kc-app'));
    await chatAs(tokens[0]!); // every issuer's keys are in by now
    const before = await jwksFetches();
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${stack.baseURL}/models`, {
        headers: { authorization: `Bearer ${tokens[i % tokens.length]}` },
      });
      expect(res.status).toBe(200);
    }
    expect(await jwksFetches()).toEqual(before);
    // each issuer was fetched exactly once, at start, and never for a request
    for (const idp of [okta, azure, keycloak]) {
      expect(fetchCount(before, idp.issuer, 'startup')).toBe(1);
      expect(fetchCount(before, idp.issuer, 'unknown_kid')).toBe(0);
    }
  });

  it('a config reload keeps the cached keys: nothing is fetched again, and the new mapping applies', async () => {
    const before = await jwksFetches();
    const config = parse(await readFile(stack.gate.configPath, 'utf8'));
    config.identity.jwt.issuers[0].claims.team = 'cid'; // okta: team from the client id now
    await stack.gate.writeConfig(config);
    const token = await okta.token('okta-app', 'ES256');
    const rec = await waitFor('reload applied', async () => {
      const r = await chatAs(token);
      return r.principal.team === 'okta-app' ? r : undefined;
    });
    expect(rec.principal).toMatchObject({ id: '00u-jane', tenant: 'acme' });
    expect(await jwksFetches()).toEqual(before);
  });

  it('a key rotation at the IdP (new kid) is picked up by one unknown-kid refetch', async () => {
    expect((await chatAs(await rotating.token('app', 'ES256'))).principal.tenant).toBe('rotors');
    await rotating.restart([makeSigningKey('RS256'), makeSigningKey('ES256'), makeSigningKey('EdDSA')]);
    const before = fetchCount(await jwksFetches(), rotating.issuer, 'unknown_kid');
    const rec = await chatAs(await rotating.token('app', 'ES256')); // signed with the new kid
    expect(rec).toMatchObject({ status: 200, principal: { id: 'svc-1', issuer: rotating.issuer } });
    expect(fetchCount(await jwksFetches(), rotating.issuer, 'unknown_kid')).toBe(before + 1);
    // the other new keys came with the same fetch: no further fetch for them
    await chatAs(await rotating.token('app', 'EdDSA'));
    expect(fetchCount(await jwksFetches(), rotating.issuer, 'unknown_kid')).toBe(before + 1);
  });

  it('the IdP down: tokens it issued before keep working on cached keys; a new kid fails closed, fast', async () => {
    // Issued while the IdP was up, presented after it went down.
    const issuedBefore = rotating.mint('ES256', validClaims(rotating.issuer, AUDIENCE, { sub: 'svc-1' }));
    const unknownKid = makeSigningKey('ES256', 'kid-after-outage');
    await rotating.stop();
    for (let i = 0; i < 5; i++) expect((await chatAs(issuedBefore)).status).toBe(200);

    // A kid the cache lacks while the IdP is down: one refetch at most (its cooldown was used
    // by the rotation above, so none), 401 within the message deadline, never a hang.
    const forged = mint(unknownKid, validClaims(rotating.issuer, AUDIENCE, { sub: 'svc-1' }));
    const started = Date.now();
    const err = await client(forged)
      .models.list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_token');
    expect(Date.now() - started).toBeLessThan(1000);
    await rotating.restart();
  });
});
