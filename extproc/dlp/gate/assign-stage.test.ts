// dlp.assign through the real state machine (runStage) and the real engine compiled from config:
// two tenants get two policies and so two actions on the same text; the response is scanned and
// restored under the policy the request got; a caller no entry matches gets the default.
import { describe, expect, it } from 'vitest';
import { runStage } from '../../../test/harness/run-stage.ts';
import { parseConfig } from '../../config/load.ts';
import type { Principal } from '../../pipeline/context.ts';

const principal = (tenant: string, roles: string[] = []): Principal => ({
  id: `${tenant}-svc`,
  tenant,
  team: undefined,
  user: undefined,
  roles,
  attributes: {},
  method: 'api_key',
  issuer: 'config',
  scope: undefined,
});

const DLP = {
  inspect: 'both',
  defaultPolicy: 'default',
  assign: [
    { from: { tenants: ['clinic-*'] }, policy: 'strict' },
    { from: { roles: ['auditor'] }, policy: 'pseudo' },
  ],
  policies: [
    { name: 'default', detectors: { EMAIL: 'warn' } },
    { name: 'strict', detectors: { EMAIL: 'block' } },
    { name: 'pseudo', detectors: { EMAIL: 'pseudonymise' } },
  ],
};

const TEXT = 'write to jane.doe@example.com today';
const body = { model: 'm', messages: [{ role: 'user', content: TEXT }] };

function run(who: Principal | undefined, reply = 'ok') {
  return runStage({
    stages: ['llm.api_shape', 'dlp.request', 'dlp.response'],
    config: { dlp: DLP },
    given: who === undefined ? {} : { principal: who },
    request: { path: '/v1/chat/completions', body },
    response: {
      headers: { 'content-type': 'application/json' },
      chunks: [
        JSON.stringify({
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: reply } }],
        }),
      ],
    },
  });
}

describe('dlp.assign', () => {
  const table: {
    name: string;
    who: Principal | undefined;
    policy: string;
    expect: (r: Awaited<ReturnType<typeof run>>) => void;
  }[] = [
    {
      name: 'a clinic tenant gets strict: the e-mail blocks',
      who: principal('clinic-north'),
      policy: 'strict',
      expect: (r) => {
        expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.EMAIL' });
        expect(r.upstream).toBeUndefined();
      },
    },
    {
      name: 'another tenant gets the default: the e-mail is only recorded',
      who: principal('acme'),
      policy: 'default',
      expect: (r) => {
        expect(r.refused).toBeUndefined();
        expect(r.upstream?.body).toBeUndefined();
        expect(r.audit.dlp?.findings).toMatchObject([{ type: 'EMAIL', action: 'warn' }]);
      },
    },
    {
      name: 'an auditor (second entry) gets pseudo: placeholder upstream',
      who: principal('acme', ['auditor']),
      policy: 'pseudo',
      expect: (r) => {
        expect(r.upstream?.body).toContain('[EMAIL_1]');
        expect(r.upstream?.body).not.toContain('jane.doe');
      },
    },
    {
      name: 'first match wins: a clinic auditor gets strict',
      who: principal('clinic-south', ['auditor']),
      policy: 'strict',
      expect: (r) => expect(r.refused).toMatchObject({ code: 'content_blocked' }),
    },
    {
      name: 'nobody identified: the default',
      who: undefined,
      policy: 'default',
      expect: (r) => expect(r.refused).toBeUndefined(),
    },
  ];
  for (const t of table)
    it(t.name, async () => {
      const r = await run(t.who);
      t.expect(r);
      expect(r.audit.dlp?.policy).toBe(t.policy);
    });

  it('the response is restored under the policy the request got', async () => {
    const r = await run(principal('acme', ['auditor']), 'Sent to [EMAIL_1].');
    expect(JSON.parse(r.client!.body).choices[0].message.content).toBe('Sent to jane.doe@example.com.');
  });

  it('an assignment to an unknown policy is a config error', () => {
    expect(() =>
      parseConfig(
        'dlp: { assign: [{ from: { tenants: [a] }, policy: nope }], policies: [{ name: default }] }',
        'x',
        {},
      ),
    ).toThrow(/dlp.assign\[0\].policy.*no policy is named "nope"|no policy is named "nope"/s);
  });

  it('a method pattern that matches no method is a config error', () => {
    expect(() => parseConfig('dlp: { assign: [{ from: { methods: [saml] }, policy: default }] }', 'x', {})).toThrow(
      /saml/,
    );
  });
});
