// policy.rules decision table, through the real pipeline and state machine (runStage): each row a
// caller (as a principal, however identified), a request and what the client gets, with the rule
// that decided and the phase it decided in (a refusal on the request-headers message means the
// body was never waited for).
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage, type StageRun } from '../../test/harness/run-stage.ts';
import type { Principal, RouteChoice } from '../pipeline/context.ts';

const POLICY = {
  rules: [
    // Endpoint-level: decidable at request headers.
    {
      id: 'no-embeddings-for-interns',
      action: 'DENY',
      from: { roles: ['intern'] },
      to: { endpoints: ['openai.embeddings'] },
    },
    // Model-level: needs the body.
    { id: 'no-gpt4-for-contractors', action: 'DENY', from: { teams: ['contractors'] }, to: { models: ['gpt-4*'] } },
    { id: 'acme-uses-the-apis', action: 'ALLOW', from: { tenants: ['acme'] } },
    { id: 'globex-own-models', action: 'ALLOW', from: { tenants: ['globex'] }, to: { models: ['globex-*'] } },
    { id: 'anyone-lists-models', action: 'ALLOW', to: { endpoints: ['openai.models'] } },
  ],
  tenantModels: { globex: ['globex-*'] },
};

const acme = (over: Partial<Principal> = {}) => jwtPrincipal({ tenant: 'acme', ...over });
const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  path: '/v1/chat/completions',
  body: { model, messages: [{ role: 'user', content: 'hi' }], ...extra },
});
const embeddings = { path: '/v1/embeddings', body: { model: 'text-embed', input: 'x' } };

interface Row {
  name: string;
  principal: Principal;
  request: { method?: string; path: string; body?: Record<string, unknown> | string };
  policy?: Record<string, unknown>;
  dataClasses?: string[];
  route?: RouteChoice;
  /** allow, or the refusal: status, code and rule, and the message it came on. */
  expect: 'allow' | { status: number; code: string; rule: string; at: 'headers' | 'body' };
  /** The rule the audit names for an allowed request. */
  allowedBy?: string;
}

const denied = (rule: string, at: 'headers' | 'body') =>
  ({ status: 403, code: 'policy_denied', rule: `policy.rules.${rule}`, at }) as const;

const rows: Row[] = [
  {
    name: 'an endpoint-level DENY refuses at request headers, before the body is uploaded',
    principal: acme({ roles: ['intern'] }),
    request: embeddings,
    expect: denied('no-embeddings-for-interns', 'headers'),
  },
  {
    name: 'an endpoint-level DENY refuses even a body that would not parse: it is never read',
    principal: acme({ roles: ['intern'] }),
    request: { path: '/v1/embeddings', body: '{not json' },
    expect: denied('no-embeddings-for-interns', 'headers'),
  },
  {
    name: 'a model-level DENY refuses once the body names the model',
    principal: acme({ team: 'contractors' }),
    request: chat('gpt-4o'),
    expect: denied('no-gpt4-for-contractors', 'body'),
  },
  {
    name: 'DENY beats ALLOW: acme may use the APIs, but not its contractors gpt-4',
    principal: acme({ team: 'contractors' }),
    request: chat('gpt-4o-mini'),
    expect: denied('no-gpt4-for-contractors', 'body'),
  },
  {
    name: 'the same contractor may use another model',
    principal: acme({ team: 'contractors' }),
    request: chat('llama-3.1-8b'),
    expect: 'allow',
    allowedBy: 'policy.rules.acme-uses-the-apis',
  },
  {
    name: 'default deny: no ALLOW rule can match, refused at request headers although a body follows',
    principal: jwtPrincipal({ tenant: 'initech' }),
    request: embeddings,
    expect: { status: 403, code: 'policy_denied', rule: 'policy.default', at: 'headers' },
  },
  {
    name: 'default deny at the body: an ALLOW rule could have matched on the model, and does not',
    principal: jwtPrincipal({ tenant: 'globex' }),
    request: chat('llama-3.1-8b'),
    expect: { status: 403, code: 'policy_denied', rule: 'policy.default', at: 'body' },
  },
  {
    name: 'an ALLOW rule on the model admits once the body names it',
    principal: jwtPrincipal({ tenant: 'globex' }),
    request: chat('globex-ft-1'),
    expect: 'allow',
    allowedBy: 'policy.rules.globex-own-models',
  },
  {
    name: "tenant isolation: another tenant's model is refused, whatever an ALLOW rule says",
    principal: acme(),
    request: chat('globex-ft-1'),
    expect: { status: 403, code: 'policy_denied', rule: 'policy.tenantIsolation.globex', at: 'body' },
  },
  {
    name: 'a call without a body is decided at request headers',
    principal: jwtPrincipal({ tenant: 'initech' }),
    request: { path: '/v1/models' },
    expect: 'allow',
    allowedBy: 'policy.rules.anyone-lists-models',
  },
  {
    name: 'a call without a body no rule allows is refused at request headers',
    principal: jwtPrincipal({ tenant: 'initech' }),
    request: { path: '/api/tags' },
    expect: { status: 403, code: 'policy_denied', rule: 'policy.default', at: 'headers' },
  },
  {
    name: "tenant isolation holds for every spelling of the other tenant's model (Ollama resolves them all)",
    principal: acme(),
    request: chat('registry.ollama.ai/library/GLOBEX-ft-1:latest'),
    expect: { status: 403, code: 'policy_denied', rule: 'policy.tenantIsolation.globex', at: 'body' },
  },
  {
    name: 'a model-level DENY holds for every spelling of the model',
    principal: acme({ team: 'contractors' }),
    request: chat('library/GPT-4o'),
    expect: denied('no-gpt4-for-contractors', 'body'),
  },
  {
    name: 'with no rules, isolation alone: the owner uses its model',
    principal: jwtPrincipal({ tenant: 'globex' }),
    request: chat('globex-ft-1'),
    policy: { tenantModels: { globex: ['globex-*'] } },
    expect: 'allow',
    allowedBy: 'policy.tenantIsolation',
  },
  {
    name: 'with no rules, isolation alone: no default deny for shared models',
    principal: acme(),
    request: chat('llama-3.1-8b'),
    policy: { tenantModels: { globex: ['globex-*'] } },
    expect: 'allow',
    allowedBy: 'policy.tenantIsolation',
  },
  {
    name: 'with no rules, isolation alone still refuses the other tenants',
    principal: acme(),
    request: chat('globex-ft-1'),
    policy: { tenantModels: { globex: ['globex-*'] } },
    expect: { status: 403, code: 'policy_denied', rule: 'policy.tenantIsolation.globex', at: 'body' },
  },
  {
    name: 'with nothing configured the stage decides nothing (the scope alone applies)',
    principal: jwtPrincipal({ tenant: 'initech' }),
    request: chat('anything'),
    policy: {},
    expect: 'allow',
  },
  {
    name: 'a condition on data classes waits for the body, where DLP put them',
    principal: acme(),
    request: chat('llama-3.1-8b'),
    policy: {
      rules: [
        { id: 'phi-hipaa', action: 'DENY', when: '"PHI" in data_classes && route.name != "hipaa"' },
        { id: 'all', action: 'ALLOW' },
      ],
    },
    dataClasses: ['PHI'],
    route: { name: 'shared', labels: {} },
    expect: denied('phi-hipaa', 'body'),
  },
  {
    name: 'the same request routed to the HIPAA route passes',
    principal: acme(),
    request: chat('llama-3.1-8b'),
    policy: {
      rules: [
        { id: 'phi-hipaa', action: 'DENY', when: '"PHI" in data_classes && route.name != "hipaa"' },
        { id: 'all', action: 'ALLOW' },
      ],
    },
    dataClasses: ['PHI'],
    route: { name: 'hipaa', labels: {} },
    expect: 'allow',
    allowedBy: 'policy.rules.all',
  },
  {
    name: 'to.routes matches the route a routing stage chose',
    principal: acme(),
    request: chat('llama-3.1-8b'),
    policy: { rules: [{ id: 'eu-only', action: 'ALLOW', to: { routes: ['eu-*'] } }] },
    route: { name: 'us-east', labels: {} },
    expect: { status: 403, code: 'policy_denied', rule: 'policy.default', at: 'body' },
  },
  {
    name: 'a condition that fails on the request (a missing attribute) makes a DENY rule match: fail closed',
    principal: acme(),
    request: chat('llama-3.1-8b'),
    policy: {
      rules: [
        { id: 'clearance', action: 'DENY', when: 'principal.attributes["clearance"] != "secret"' },
        { id: 'all', action: 'ALLOW' },
      ],
    },
    expect: denied('clearance', 'headers'),
  },
  {
    name: 'and an ALLOW rule not match',
    principal: acme(),
    request: chat('llama-3.1-8b'),
    policy: { rules: [{ id: 'cleared', action: 'ALLOW', when: 'principal.attributes["clearance"] == "secret"' }] },
    expect: { status: 403, code: 'policy_denied', rule: 'policy.default', at: 'headers' },
  },
  {
    name: "the credential's scope still applies first",
    principal: jwtPrincipal({
      tenant: 'acme',
      scope: { endpoints: new Set(['openai.chat']), models: (m) => m === 'llama-3.1-8b', source: 'identity.apiKeys.k' },
    }),
    request: chat('mistral-7b'),
    expect: { status: 403, code: 'model_not_allowed', rule: 'identity.apiKeys.k.models', at: 'body' },
  },
];

function check(run: StageRun, row: Row): void {
  if (row.expect === 'allow') {
    expect(run.refused).toBeUndefined();
    const rules = run.audit.decisions.filter((d) => d.stage === 'policy.rules');
    if (row.allowedBy === undefined) expect(rules).toEqual([]);
    else expect(rules).toEqual([expect.objectContaining({ rule_id: row.allowedBy, effect: 'allow' })]);
    return;
  }
  const e = row.expect;
  expect(run.refused).toMatchObject({ status: e.status, code: e.code, ruleId: e.rule });
  // The refusal answers the headers message (the first) or the body's (the second).
  const at = run.answers.findIndex((a) => a.immediateResponse !== undefined);
  expect(at).toBe(e.at === 'headers' ? 0 : 1);
  expect(run.audit.error?.rule_id).toBe(e.rule);
  expect(run.audit.decisions).toContainEqual(expect.objectContaining({ rule_id: e.rule, effect: 'deny' }));
}

describe('policy.rules', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const run = await runStage({
        stages: ['llm.api_shape', 'policy.access', 'policy.rules'],
        given: {
          principal: row.principal,
          ...(row.dataClasses ? { dataClasses: row.dataClasses } : {}),
          ...(row.route ? { route: row.route } : {}),
        },
        config: { policy: row.policy ?? POLICY },
        request: row.request,
      });
      check(run, row);
    });
  }

  it('counts each decision by rule id and effect', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'policy.access', 'policy.rules'],
      given: { principal: acme({ team: 'contractors' }) },
      config: { policy: POLICY },
      request: chat('gpt-4o'),
    });
    const text = await run.metrics.registry.getSingleMetricAsString('lmgate_policy_decisions_total');
    expect(text).toContain(
      'lmgate_policy_decisions_total{rule="policy.rules.no-gpt4-for-contractors",effect="deny"} 1',
    );
  });
});

describe('policy.rules: CEL conditions over each input field', () => {
  // Wednesday 4 March 2026, 21:30 UTC: 22:30 in Europe/Berlin.
  const clock = { now: () => Date.parse('2026-03-04T21:30:00Z') };
  const request = chat('gpt-4o', { stream: true, max_tokens: 2000 });
  const table: [when: string, matches: boolean, over?: Partial<Row>][] = [
    ['principal.id == "user-42"', true],
    ['principal.tenant == "acme"', true],
    ['principal.team == "claims"', true],
    ['principal.team == ""', true, { principal: jwtPrincipal({ team: undefined }) }],
    ['principal.user.endsWith("@acme.example")', true],
    ['"analyst" in principal.roles', true],
    ['principal.roles.exists(r, r.startsWith("admin"))', false],
    ['principal.attributes["department"] == "claims"', true],
    ['"region" in principal.attributes', false],
    ['principal.method == "jwt"', true],
    ['principal.issuer == "https://idp.acme.example"', true],
    ['request.endpoint == "openai.chat"', true],
    ['request.model.startsWith("gpt-")', true],
    ['request.model.endsWith("-4o")', true],
    ['request.stream', true],
    ['request.max_tokens > 1000', true],
    // Unset, the server generates as far as it goes (vLLM: to the end of the context): a cap on
    // max_tokens must not be passed by leaving it out, nor by Ollama's -1 (no limit).
    ['request.max_tokens > 4096', true, { request: chat('gpt-4o') }],
    [
      'request.max_tokens > 4096',
      true,
      { request: { path: '/api/generate', body: { model: 'l', prompt: 'x', options: { num_predict: -1 } } } },
    ],
    ['request.max_tokens == 0', true, { request: { path: '/v1/embeddings', body: { model: 'e', input: 'x' } } }],
    [
      'request.max_tokens == 64',
      true,
      { request: { path: '/api/chat', body: { model: 'l', messages: [], options: { num_predict: 64 } } } },
    ],
    ['request.path == "/v1/chat/completions"', true],
    ['request.method == "POST"', true],
    ['"PII" in data_classes', true, { dataClasses: ['PII'] }],
    ['size(data_classes) == 0', true],
    ['route.name == "eu-1"', true, { route: { name: 'eu-1', labels: {} } }],
    ['route.name == ""', true],
    ['route.labels["residency"] == "eu"', true, { route: { name: 'eu-1', labels: { residency: 'eu' } } }],
    ['time.localHour() == 22', true],
    ['time.localWeekday() == 3', true],
    ['time.getHours() == 21', true],
    ['time > timestamp("2026-03-01T00:00:00Z")', true],
  ];
  for (const [when, matches, over] of table) {
    it(`${when} ${matches ? 'matches' : 'does not match'}`, async () => {
      const run = await runStage({
        stages: ['llm.api_shape', 'policy.access', 'policy.rules'],
        given: {
          principal: over?.principal ?? jwtPrincipal(),
          ...(over?.dataClasses ? { dataClasses: over.dataClasses } : {}),
          ...(over?.route ? { route: over.route } : {}),
        },
        config: {
          policy: {
            timeZone: 'Europe/Berlin',
            rules: [
              { id: 'cond', action: 'DENY', when },
              { id: 'all', action: 'ALLOW' },
            ],
          },
        },
        request: over?.request ?? request,
        clock,
      });
      if (matches) expect(run.refused).toMatchObject({ status: 403, ruleId: 'policy.rules.cond' });
      else expect(run.refused).toBeUndefined();
    });
  }
});
