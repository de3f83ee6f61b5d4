// identity.authenticate with JWTs, through the real state machine (runStage) and a fake IdP: one
// row per accepted shape and per class of refusal.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeIdp } from '../../../test/harness/fake-idp.ts';
import {
  jwks,
  makeSigningKey,
  mint,
  mintHs256WithPublicKey,
  mintUnsigned,
  nowSeconds,
  validClaims,
} from '../../../test/harness/jwt-keys.ts';
import { runStage, type StageRun } from '../../../test/harness/run-stage.ts';
import { systemClock } from '../../pipeline/stage.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { KeyRegistry } from './key-registry.ts';
import { REJECTION_MESSAGES, type RejectionReason } from './rejection.ts';

const rs = makeSigningKey('RS256');
const es = makeSigningKey('ES256');
const ed = makeSigningKey('EdDSA');
const ps = makeSigningKey('PS256');
const unpublished = makeSigningKey('ES256', es.kid); // same kid, key the IdP never published
const idp = new FakeIdp('https://idp.test').keys(jwks(rs, es, ed, ps));
const metrics = new Metrics({ defaultMetrics: false });
const jwtKeys = new KeyRegistry({
  metrics,
  logger: pino({ level: 'silent' }),
  clock: systemClock,
  fetchJson: idp.fetchJson,
});

const AUD = 'lm-gate';
const issuer = {
  issuer: idp.issuer,
  audiences: [AUD, 'other-aud'],
  algorithms: ['RS256', 'ES256', 'EdDSA'],
  tenant: { claim: 'org' },
  claims: { user: 'email', roles: 'roles' },
};
const strictIssuer = {
  issuer: 'https://strict.test',
  jwksUri: 'https://strict.test/keys',
  audiences: [AUD],
  algorithms: ['ES256'],
  requireType: true,
  tenant: 'acme',
};
idp.routes.set('https://strict.test/keys', { json: jwks(es) });

const claims = (over: Record<string, unknown> = {}) =>
  validClaims(idp.issuer, AUD, { org: 'acme', email: 'jane@acme.test', roles: ['analyst'], ...over });
const now = nowSeconds();

interface Row {
  name: string;
  token: () => string;
  /** The refusal's reason, or undefined when the token is accepted. */
  reason?: RejectionReason;
  expect?: (run: StageRun) => void;
}

const rows: Row[] = [
  {
    name: 'an RS256 token identifies the caller from its claims',
    token: () => mint(rs, claims()),
    expect: (run) => {
      expect(run.ctx.principal).toEqual({
        id: 'user-1',
        tenant: 'acme',
        team: undefined,
        user: 'jane@acme.test',
        roles: ['analyst'],
        attributes: {},
        method: 'jwt',
        issuer: idp.issuer,
        scope: undefined,
      });
      expect(run.audit.principal).toMatchObject({ id: 'user-1', key_id: null, method: 'jwt', issuer: idp.issuer });
      expect(run.upstream?.removed).toEqual(expect.arrayContaining(['authorization']));
      expect(run.upstream?.set).toMatchObject({ 'x-lmgate-tenant': 'acme', 'x-lmgate-principal': 'user-1' });
      expect(run.upstream?.set['x-lmgate-key-id']).toBeUndefined();
    },
  },
  { name: 'an ES256 token', token: () => mint(es, claims()) },
  { name: 'an EdDSA token', token: () => mint(ed, claims()) },
  { name: 'typ JWT is accepted', token: () => mint(es, claims(), { header: { typ: 'JWT' } }) },
  {
    name: 'typ application/at+jwt is at+jwt',
    token: () => mint(es, claims(), { header: { typ: 'application/AT+JWT' } }),
  },
  {
    name: 'no typ is accepted unless the issuer requires one',
    token: () => mint(es, claims(), { header: { typ: undefined } }),
  },
  { name: 'aud as a list with one of ours', token: () => mint(es, claims({ aud: ['someone-else', 'other-aud'] })) },
  { name: 'expired, but within the clock tolerance', token: () => mint(es, claims({ exp: now - 5 })) },
  { name: 'nbf a little ahead, within the tolerance', token: () => mint(es, claims({ nbf: now + 5 })) },
  // ---- refusals ----
  { name: 'alg none with no signature', token: () => mintUnsigned(claims()), reason: 'malformed' },
  { name: 'alg none with a signature', token: () => `${mintUnsigned(claims(), es.kid)}c2ln`, reason: 'algorithm' },
  {
    name: 'HS256 keyed with the RSA public key',
    token: () => mintHs256WithPublicKey(rs, claims()),
    reason: 'algorithm',
  },
  {
    name: "an algorithm the IdP's key supports but the issuer does not allow (PS256)",
    token: () => mint(ps, claims()),
    reason: 'algorithm',
  },
  {
    name: 'an ES256 header on an RSA key id (algorithm confusion)',
    token: () => mint(es, claims(), { header: { kid: rs.kid } }),
    reason: 'unknown_key',
  },
  { name: 'expired', token: () => mint(es, claims({ exp: now - 120 })), reason: 'expired' },
  { name: 'not yet valid', token: () => mint(es, claims({ nbf: now + 3600 })), reason: 'not_yet_valid' },
  {
    name: 'issued an hour in the future',
    token: () => mint(es, claims({ iat: now + 3600 })),
    reason: 'issued_in_future',
  },
  { name: 'no exp', token: () => mint(es, claims({ exp: undefined })), reason: 'missing_exp' },
  { name: 'exp as a string', token: () => mint(es, claims({ exp: String(now + 600) })), reason: 'bad_claim' },
  { name: 'another audience', token: () => mint(es, claims({ aud: 'someone-else' })), reason: 'audience' },
  { name: 'no audience', token: () => mint(es, claims({ aud: undefined })), reason: 'audience' },
  {
    name: 'an issuer the gate does not trust',
    token: () => mint(es, claims({ iss: 'https://evil.test' })),
    reason: 'unknown_issuer',
  },
  {
    name: 'the trusted issuer with a trailing slash is another issuer',
    token: () => mint(es, claims({ iss: `${idp.issuer}/` })),
    reason: 'unknown_issuer',
  },
  {
    name: 'an unknown kid (refetched once, still unknown)',
    token: () => mint(es, claims(), { header: { kid: 'never-published' } }),
    reason: 'unknown_key',
  },
  {
    name: 'a known kid, signed by another key',
    token: () => mint(unpublished, claims()),
    reason: 'signature',
  },
  {
    name: 'a tampered payload (the signature of another)',
    token: () => {
      const [h, , s] = mint(es, claims()).split('.');
      const forged = Buffer.from(JSON.stringify(claims({ roles: ['admin'] }))).toString('base64url');
      return `${h}.${forged}.${s}`;
    },
    reason: 'signature',
  },
  {
    name: 'a signature two bytes short',
    token: () => {
      const [h, p, s] = mint(es, claims()).split('.') as [string, string, string];
      return `${h}.${p}.${Buffer.from(s, 'base64url').subarray(0, -2).toString('base64url')}`;
    },
    reason: 'signature',
  },
  {
    name: 'a typ that is not an access token',
    token: () => mint(es, claims(), { header: { typ: 'dpop+jwt' } }),
    reason: 'type',
  },
  { name: 'no sub (no id)', token: () => mint(es, claims({ sub: undefined })), reason: 'principal' },
  { name: 'no tenant claim', token: () => mint(es, claims({ org: undefined })), reason: 'principal' },
  {
    name: 'an issuer that requires typ refuses a token without one',
    token: () => mint(es, { ...claims(), iss: 'https://strict.test' }, { header: { typ: undefined } }),
    reason: 'type',
  },
];

describe('identity.authenticate with a JWT', () => {
  for (const row of rows) {
    it(`${row.reason ? `refuses (${row.reason})` : 'accepts'}: ${row.name}`, async () => {
      const token = row.token();
      const run = await runStage({
        stages: ['identity.authenticate'],
        config: { identity: { jwt: { issuers: [issuer, strictIssuer] } } },
        request: { path: '/v1/models', headers: { authorization: `Bearer ${token}` } },
        jwtKeys,
      });
      if (row.reason === undefined) {
        expect(run.refused).toBeUndefined();
        expect(run.ctx.principal).toMatchObject({ method: 'jwt', issuer: idp.issuer, tenant: 'acme' });
      } else {
        expect(run.refused).toMatchObject({ status: 401, code: 'invalid_token', type: 'authentication_error' });
        expect(run.refused?.message).toContain(REJECTION_MESSAGES[row.reason]);
        expect(run.refused?.message).not.toContain(token.split('.')[1]!.slice(0, 16));
        expect(run.audit).toMatchObject({ principal: null, status: 401, outcome: 'rejected' });
        const ir = run.answers.find((a) => a.immediateResponse)?.immediateResponse;
        const www = ir?.headers?.setHeaders?.find((h) => h.header?.key === 'www-authenticate')?.header;
        expect(Buffer.from(www?.rawValue ?? []).toString()).toBe('Bearer realm="lm-gate", error="invalid_token"');
      }
      row.expect?.(run);
      expect(JSON.stringify(run.audit)).not.toContain(token);
    });
  }

  it('steady state: verified tokens never fetch keys, unknown kids at most once per cooldown', async () => {
    const before = idp.fetched.length;
    for (let i = 0; i < 20; i++) {
      const run = await runStage({
        stages: ['identity.authenticate'],
        config: { identity: { jwt: { issuers: [issuer, strictIssuer] } } },
        request: { path: '/v1/models', headers: { authorization: `Bearer ${mint(es, claims())}` } },
        jwtKeys,
      });
      expect(run.refused).toBeUndefined();
    }
    for (let i = 0; i < 20; i++)
      await runStage({
        stages: ['identity.authenticate'],
        config: { identity: { jwt: { issuers: [issuer, strictIssuer] } } },
        request: {
          path: '/v1/models',
          headers: { authorization: `Bearer ${mint(es, claims(), { header: { kid: `x${i}` } })}` },
        },
        jwtKeys,
      });
    // the unknown-kid row above already used this cooldown: nothing more was fetched
    expect(idp.fetched.length).toBe(before);
  });
});
