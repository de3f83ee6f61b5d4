// identity.authenticate decision table, through the real state machine (runStage).
import { describe, expect, it } from 'vitest';
import { runStage, type StageRun } from '../../test/harness/run-stage.ts';
import { generateApiKey, hashApiKey } from './api-keys.ts';

const alice = generateApiKey();
const revoked = generateApiKey();
const apiKeys = [
  { id: 'alice', sha256: hashApiKey(alice), tenant: 'acme', team: 'claims', roles: ['analyst'], models: ['mock-*'] },
  { id: 'old', sha256: hashApiKey(revoked), tenant: 'acme', disabled: true },
];

interface Row {
  name: string;
  headers: Record<string, string>;
  expect: (run: StageRun) => void;
}

const unauthenticated = (code: string) => (run: StageRun) => {
  expect(run.refused).toMatchObject({ status: 401, code, type: 'authentication_error' });
  expect(run.audit.principal).toBeNull();
};

const rows: Row[] = [
  {
    name: 'a known key as a Bearer token identifies the caller as a method-neutral principal',
    headers: { authorization: `Bearer ${alice}` },
    expect: (run) => {
      expect(run.refused).toBeUndefined();
      expect(run.ctx.principal).toMatchObject({
        id: 'alice',
        tenant: 'acme',
        team: 'claims',
        roles: ['analyst'],
        method: 'api_key',
        issuer: 'config',
        scope: { source: 'identity.apiKeys.alice', endpoints: 'all' },
      });
      expect(run.ctx.principal?.scope?.models('mock-small')).toBe(true);
      expect(run.ctx.principal?.scope?.models('gpt-4o')).toBe(false);
      expect(run.audit.principal).toMatchObject({ id: 'alice', key_id: 'alice', method: 'api_key' });
    },
  },
  {
    name: 'the credential never goes upstream; the principal goes as trusted headers',
    headers: { authorization: `Bearer ${alice}` },
    expect: (run) => {
      expect(run.upstream?.removed).toEqual(expect.arrayContaining(['authorization', 'x-api-key']));
      expect(run.upstream?.set).toMatchObject({ 'x-lmgate-tenant': 'acme', 'x-lmgate-key-id': 'alice' });
    },
  },
  {
    name: 'x-api-key is accepted when there is no Authorization header',
    headers: { 'x-api-key': alice },
    expect: (run) => expect(run.ctx.principal?.id).toBe('alice'),
  },
  {
    name: 'two credentials (Authorization and x-api-key) are ambiguous: 401, whichever would hold',
    headers: { authorization: `Bearer ${alice}`, 'x-api-key': alice },
    expect: unauthenticated('missing_api_key'),
  },
  {
    name: 'a JWT-shaped bearer is 401 when no issuer is configured',
    headers: { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln' },
    expect: unauthenticated('invalid_token'),
  },
  { name: 'no credential is 401 missing_api_key', headers: {}, expect: unauthenticated('missing_api_key') },
  {
    name: 'a malformed Authorization header is 401 missing_api_key',
    headers: { authorization: `Basic ${alice}` },
    expect: unauthenticated('missing_api_key'),
  },
  {
    name: 'an unknown key is 401 invalid_api_key',
    headers: { authorization: `Bearer ${generateApiKey()}` },
    expect: unauthenticated('invalid_api_key'),
  },
  {
    name: 'a disabled key fails exactly like an unknown one',
    headers: { authorization: `Bearer ${revoked}` },
    expect: unauthenticated('invalid_api_key'),
  },
  {
    name: 'a 401 tells the client which scheme to use',
    headers: {},
    expect: (run) => {
      const ir = run.answers.find((a) => a.immediateResponse)?.immediateResponse;
      const names = ir?.headers?.setHeaders?.map((h) => h.header?.key);
      expect(names).toContain('www-authenticate');
    },
  },
];

describe('identity.authenticate', () => {
  for (const row of rows) {
    it(row.name, async () => {
      row.expect(
        await runStage({
          stages: ['identity.authenticate'],
          config: { identity: { apiKeys } },
          request: { path: '/v1/models', headers: row.headers },
        }),
      );
    });
  }

  it('the key never appears in the audit record', async () => {
    const run = await runStage({
      stages: ['identity.authenticate'],
      config: { identity: { apiKeys } },
      request: { path: '/v1/models', headers: { authorization: `Bearer ${alice}` } },
    });
    expect(JSON.stringify(run.audit)).not.toContain(alice);
  });
});
