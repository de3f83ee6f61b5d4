// The kill switch's decision table, through the real state machine (runStage): killswitch.principal
// and killswitch.model with the stages around them, kills from the config and from the set shared
// through Redis (as the replica last heard it), expiry on a fake clock.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage, type StageRun } from '../../test/harness/run-stage.ts';
import { generateApiKey, hashApiKey } from '../identity/api-keys.ts';
import type { Principal } from '../pipeline/context.ts';
import { type KillEntry, type KillKind, type KillSet, KillSetBuilder } from './kill-set.ts';

const aliceKey = generateApiKey('alice');
const bobKey = generateApiKey('bob');
const keys = [
  { id: 'alice', sha256: hashApiKey(aliceKey), tenant: 'acme', team: 'research', user: 'alice' },
  { id: 'bob', sha256: hashApiKey(bobKey), tenant: 'initech', user: 'bob' },
];
const ALL = [
  'identity.authenticate',
  'killswitch.principal',
  'llm.api_shape',
  'routing.route',
  'killswitch.model',
  'policy.access',
];
const ROUTING = { aliases: { 'gpt-4o': 'llama-3.1-70b' } };
const chat = (model = 'mock-small') => ({ path: '/v1/chat/completions', body: { model, messages: [] } });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

const shared = (...entries: [KillKind, string, Partial<KillEntry>?][]): KillSet => {
  const b = new KillSetBuilder();
  for (const [kind, id, e] of entries) b.set(kind, id, { at: 1, source: 'cli', by: 'ops@laptop', ...e });
  return b.build();
};

interface Row {
  name: string;
  killSwitch?: Record<string, string[]>;
  kills?: KillSet;
  now?: number;
  /** A seeded caller instead of a key (a JWT principal). */
  principal?: Principal;
  key?: string;
  request?: { path: string; headers?: Record<string, string>; body?: Record<string, unknown> | string };
  expect: (run: StageRun) => void | Promise<void>;
}

const admitted = (run: StageRun) => expect(run.refused).toBeUndefined();
const refused = (status: number, code: string, ruleId?: string) => (run: StageRun) => {
  expect(run.refused).toMatchObject({ status, code });
  expect(run.refused?.ruleId).toBe(ruleId);
};

const rows: Row[] = [
  { name: 'nothing killed: admitted', key: aliceKey, expect: admitted },
  {
    name: 'a key in killSwitch.keys is refused as an unknown key is, naming no rule',
    killSwitch: { keys: ['alice'] },
    key: aliceKey,
    expect: refused(401, 'invalid_api_key'),
  },
  {
    name: 'a key killed through Redis is refused the same way',
    kills: shared(['key', 'alice']),
    key: aliceKey,
    expect: refused(401, 'invalid_api_key'),
  },
  {
    name: 'a killed key gets 401 before a compressed body could get it 415 (as an unknown key would)',
    kills: shared(['key', 'alice']),
    key: aliceKey,
    request: { ...chat(), headers: { 'content-encoding': 'gzip' } },
    expect: refused(401, 'invalid_api_key'),
  },
  {
    name: 'a killed key gets 401 on a path that is not an LLM API, where a valid key gets 404',
    kills: shared(['key', 'alice']),
    key: aliceKey,
    request: { path: '/admin' },
    expect: refused(401, 'invalid_api_key'),
  },
  {
    name: 'the audit says which kill refused a key, and where it came from',
    kills: shared(['key', 'alice', { reason: 'leaked in a gist' }]),
    key: aliceKey,
    expect: (run) => {
      expect(run.audit.decisions).toEqual([
        {
          stage: 'killswitch.principal',
          rule_id: 'killSwitch.key.alice',
          effect: 'deny',
          reason: 'killed (lm-gate kill by ops@laptop): leaked in a gist',
        },
      ]);
      expect(run.audit.principal?.key_id).toBe('alice');
    },
  },
  {
    name: 'another key is not touched by a key kill',
    kills: shared(['key', 'alice']),
    key: bobKey,
    expect: admitted,
  },
  {
    name: 'a killed user: 403 principal_disabled with the rule id, counted by rule',
    killSwitch: { users: ['alice'] },
    key: aliceKey,
    expect: async (run) => {
      refused(403, 'principal_disabled', 'killSwitch.user.alice')(run);
      expect(await run.metrics.metricsText()).toMatch(
        /^lmgate_policy_decisions_total\{rule="killSwitch.user.alice",effect="deny"\} 1$/m,
      );
    },
  },
  {
    name: 'a killed team: every caller in it',
    kills: shared(['team', 'research']),
    key: aliceKey,
    expect: refused(403, 'principal_disabled', 'killSwitch.team.research'),
  },
  {
    name: 'a killed tenant: every caller in it, and not the callers of another',
    kills: shared(['tenant', 'initech']),
    key: bobKey,
    expect: refused(403, 'principal_disabled', 'killSwitch.tenant.initech'),
  },
  {
    name: 'a killed tenant does not touch another tenant',
    kills: shared(['tenant', 'initech']),
    key: aliceKey,
    expect: admitted,
  },
  {
    name: 'a user is killed however identified: a JWT caller',
    kills: shared(['user', 'jane@acme.example']),
    principal: jwtPrincipal(),
    expect: refused(403, 'principal_disabled', 'killSwitch.user.jane@acme.example'),
  },
  {
    name: 'a key kill applies to API keys only: a JWT subject with the same id is not a key',
    kills: shared(['key', 'user-42']),
    principal: jwtPrincipal(),
    expect: admitted,
  },
  {
    name: 'a kill with an expiry refuses until it',
    kills: shared(['user', 'alice', { expiresAt: 10_000 }]),
    now: 9_999,
    key: aliceKey,
    expect: refused(403, 'principal_disabled', 'killSwitch.user.alice'),
  },
  {
    name: 'and admits from then on',
    kills: shared(['user', 'alice', { expiresAt: 10_000 }]),
    now: 10_000,
    key: aliceKey,
    expect: admitted,
  },
  {
    name: 'a killed model: 403 model_disabled once the body names it, for every caller',
    kills: shared(['model', 'llama-3.1-70b']),
    key: bobKey,
    request: chat('llama-3.1-70b'),
    expect: refused(403, 'model_disabled', 'killSwitch.model.llama-3.1-70b'),
  },
  {
    name: 'a model killed in the config, the decision saying so',
    killSwitch: { models: ['mock-small'] },
    key: aliceKey,
    expect: (run) => {
      refused(403, 'model_disabled', 'killSwitch.model.mock-small')(run);
      expect(run.audit.decisions).toContainEqual({
        stage: 'killswitch.model',
        rule_id: 'killSwitch.model.mock-small',
        effect: 'deny',
        reason: "killed (this replica's config)",
      });
    },
  },
  {
    name: 'a killed model reached through an alias is refused, naming the model that would serve',
    kills: shared(['model', 'llama-3.1-70b']),
    key: aliceKey,
    request: chat('gpt-4o'),
    expect: refused(403, 'model_disabled', 'killSwitch.model.llama-3.1-70b'),
  },
  {
    name: 'a killed alias name is refused too',
    killSwitch: { models: ['gpt-4o'] },
    key: aliceKey,
    request: chat('gpt-4o'),
    expect: refused(403, 'model_disabled', 'killSwitch.model.gpt-4o'),
  },
  {
    name: 'model names match exactly: another model of the family passes',
    kills: shared(['model', 'llama-3.1-70b']),
    key: aliceKey,
    request: chat('llama-3.1-8b'),
    expect: admitted,
  },
  {
    name: 'a request that names no model is not touched by a model kill',
    kills: shared(['model', 'mock-small']),
    key: aliceKey,
    request: { path: '/v1/models' },
    expect: admitted,
  },
];

describe('kill switch stages', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const request: NonNullable<Row['request']> = row.request ?? chat();
      const run = await runStage({
        stages: row.principal ? ALL.filter((s) => s !== 'identity.authenticate') : ALL,
        config: {
          identity: { apiKeys: keys },
          routing: ROUTING,
          ...(row.killSwitch ? { killSwitch: row.killSwitch } : {}),
        },
        ...(row.principal ? { given: { principal: row.principal } } : {}),
        ...(row.kills ? { kills: row.kills } : {}),
        ...(row.now !== undefined ? { clock: { now: () => row.now! } } : {}),
        request: { ...request, headers: { ...(row.key ? bearer(row.key) : {}), ...request.headers } },
      });
      await row.expect(run);
    });
  }

  it('a killed key gets the same answer as an unknown key or a wrong secret, byte for byte', async () => {
    const answer = async (key: string, kills?: KillSet) => {
      const run = await runStage({
        stages: ALL,
        config: { identity: { apiKeys: keys } },
        ...(kills ? { kills } : {}),
        request: { ...chat(), headers: bearer(key) },
      });
      const ir = run.answers.find((a) => a.immediateResponse)?.immediateResponse;
      return {
        status: ir?.status,
        headers: ir?.headers,
        body: Buffer.from(ir?.body ?? []).toString(),
        details: ir?.details,
      };
    };
    const killed = await answer(aliceKey, shared(['key', 'alice']));
    expect(killed.status?.code).toBe(401);
    // An id nobody has, and alice's id with another secret.
    expect(killed).toEqual(await answer(generateApiKey('nobody')));
    expect(killed).toEqual(await answer(generateApiKey('alice')));
  });
});
