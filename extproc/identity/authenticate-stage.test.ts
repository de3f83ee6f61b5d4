// identity.authenticate decision table, through the real state machine (runStage).
import { describe, expect, it } from 'vitest';
import { runStage, type StageRun } from '../../test/harness/run-stage.ts';
import { INVALID_KEY_MESSAGE, REFUSAL_REASONS } from './api-key-authenticator.ts';
import { generateApiKey, hashApiKey } from './api-keys.ts';

// The rows run at NOW on a fake clock: expiry and rotation grace are decided against it.
const NOW = Date.parse('2026-03-01T12:00:00Z');
const at = (ms: number) => new Date(ms).toISOString();

const alice = generateApiKey('alice');
const revoked = generateApiKey('old');
const expired = generateApiKey('expired');
const expiring = generateApiKey('expiring');
const svc = generateApiKey('svc_batch.2');
const rotatedBefore = generateApiKey('rotated');
const rotatedNow = generateApiKey('rotated');
const graceOverBefore = generateApiKey('grace-over');
const graceOverNow = generateApiKey('grace-over');
const apiKeys = [
  {
    id: 'alice',
    sha256: hashApiKey(alice),
    tenant: 'acme',
    team: 'claims',
    roles: ['analyst'],
    models: ['mock-*'],
    attributes: { department: 'claims', clearance: 'phi' },
    labels: { owner: 'claims-platform', ticket: 'SEC-12' },
  },
  { id: 'old', sha256: hashApiKey(revoked), tenant: 'acme', disabled: true },
  { id: 'expired', sha256: hashApiKey(expired), tenant: 'acme', expiresAt: at(NOW) },
  { id: 'expiring', sha256: hashApiKey(expiring), tenant: 'acme', expiresAt: at(NOW + 1000) },
  { id: 'svc_batch.2', sha256: hashApiKey(svc), tenant: 'acme' },
  {
    id: 'rotated',
    sha256: hashApiKey(rotatedNow),
    tenant: 'acme',
    previous: { sha256: hashApiKey(rotatedBefore), expiresAt: at(NOW + 60_000) },
  },
  {
    id: 'grace-over',
    sha256: hashApiKey(graceOverNow),
    tenant: 'acme',
    previous: { sha256: hashApiKey(graceOverBefore), expiresAt: at(NOW) },
  },
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

/** Refused exactly like an unknown key: same status, code and message; the audit record alone
 * says why, when the key exists. */
const invalidKey =
  (auditReason?: string, keyId?: string) =>
  (run: StageRun): void => {
    unauthenticated('invalid_api_key')(run);
    expect(run.refused?.message).toBe(INVALID_KEY_MESSAGE);
    expect(run.audit.decisions).toEqual(
      auditReason === undefined
        ? []
        : [
            {
              stage: 'identity.authenticate',
              rule_id: `identity.apiKeys.${keyId}`,
              effect: 'deny',
              reason: auditReason,
            },
          ],
    );
  };

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

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
    name: 'an unknown key id is 401 invalid_api_key',
    headers: bearer(generateApiKey('nobody')),
    expect: invalidKey(),
  },
  {
    name: 'the right id with a wrong secret fails like an unknown key; the audit says which key was tried',
    headers: bearer(generateApiKey('alice')),
    expect: invalidKey(REFUSAL_REASONS.secret, 'alice'),
  },
  {
    name: "one key's secret under another key's id fails",
    headers: bearer(`lmg_alice_${svc.slice(-43)}`),
    expect: invalidKey(REFUSAL_REASONS.secret, 'alice'),
  },
  {
    name: 'a disabled key fails exactly like an unknown one',
    headers: bearer(revoked),
    expect: invalidKey(REFUSAL_REASONS.disabled, 'old'),
  },
  {
    name: 'a key at its expiresAt instant has expired and fails like an unknown one',
    headers: bearer(expired),
    expect: invalidKey(REFUSAL_REASONS.expired, 'expired'),
  },
  {
    name: 'a key a second before its expiresAt is accepted',
    headers: bearer(expiring),
    expect: (run) => expect(run.ctx.principal?.id).toBe('expiring'),
  },
  {
    name: 'an id with _ and . is read from the key (the secret is the fixed-length tail)',
    headers: { 'x-api-key': svc },
    expect: (run) => expect(run.ctx.principal?.id).toBe('svc_batch.2'),
  },
  {
    name: "a rotated key's new secret is accepted",
    headers: bearer(rotatedNow),
    expect: (run) => {
      expect(run.ctx.principal?.id).toBe('rotated');
      expect(run.audit.decisions).toEqual([]);
    },
  },
  {
    name: "a rotated key's old secret is accepted within its grace, and the audit says so",
    headers: bearer(rotatedBefore),
    expect: (run) => {
      expect(run.ctx.principal?.id).toBe('rotated');
      expect(run.audit.decisions).toEqual([
        expect.objectContaining({ rule_id: 'identity.apiKeys.rotated', effect: 'allow' }),
      ]);
    },
  },
  {
    name: "a rotated key's old secret fails once its grace has ended",
    headers: bearer(graceOverBefore),
    expect: invalidKey(REFUSAL_REASONS.previousExpired, 'grace-over'),
  },
  {
    name: "after the grace the rotated key's new secret still works",
    headers: bearer(graceOverNow),
    expect: (run) => expect(run.ctx.principal?.id).toBe('grace-over'),
  },
  {
    name: 'a truncated key fails like an unknown one',
    headers: bearer(alice.slice(0, -1)),
    expect: invalidKey(),
  },
  {
    name: 'a key with a character appended fails like an unknown one',
    headers: bearer(`${alice}A`),
    expect: invalidKey(),
  },
  {
    name: 'a key of the old id-less format (lmg_ and 43 characters) is no longer accepted',
    headers: bearer(`lmg_${alice.slice(-43)}`),
    expect: invalidKey(),
  },
  {
    name: 'a bare prefix fails like an unknown key',
    headers: bearer('lmg_'),
    expect: invalidKey(),
  },
  {
    name: "a key's attributes reach the principal for policy; its labels do not",
    headers: bearer(alice),
    expect: (run) => {
      expect(run.ctx.principal?.attributes).toEqual({ department: 'claims', clearance: 'phi' });
      expect(JSON.stringify(run.ctx.principal)).not.toContain('SEC-12');
    },
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
          clock: { now: () => NOW },
        }),
      );
    });
  }

  it('neither the key nor its secret appears in the audit record, admitted or refused', async () => {
    for (const key of [alice, generateApiKey('alice')]) {
      const run = await runStage({
        stages: ['identity.authenticate'],
        config: { identity: { apiKeys } },
        request: { path: '/v1/models', headers: bearer(key) },
      });
      expect(JSON.stringify(run.audit)).not.toContain(key.slice(-43));
    }
  });

  it('a keys file listing no keys still takes API keys: one is refused as invalid, not as unaccepted', async () => {
    const run = await runStage({
      stages: ['identity.authenticate'],
      config: { identity: { keysFile: 'keys.yaml' } },
      request: { path: '/v1/models', headers: bearer(alice) },
    });
    expect(run.refused).toMatchObject({ status: 401, code: 'invalid_api_key', message: INVALID_KEY_MESSAGE });
  });
});
