// routing.route decision table, through the real state machine (runStage).
import { describe, expect, it } from 'vitest';
import { runStage, type StageRun } from '../../test/harness/run-stage.ts';
import type { Principal } from '../pipeline/context.ts';

process.env.LMGATE_TEST_LARGE_TOKEN = 'upstream-secret-large';

const routing = {
  dataClassesHeader: 'x-data-classes',
  principalLabels: ['residency'],
  default: 'small',
  aliases: { 'gpt-4o': 'llama-70b', 'gpt-4o-mini': 'mock-small' },
  routes: [
    { name: 'small', models: ['mock-small'], labels: { residency: 'us' } },
    {
      name: 'large',
      models: ['llama-70b', 'mock-large'],
      labels: { residency: 'us' },
      credential: { from: 'env:LMGATE_TEST_LARGE_TOKEN' },
    },
    { name: 'hipaa', models: ['llama-70b'], labels: { residency: 'us', env: 'hipaa' }, dataClasses: ['phi'] },
    { name: 'eu', models: ['llama-70b', 'mock-small'], labels: { residency: 'eu' }, dataClasses: ['pii'] },
  ],
};

const principal = (attributes: Record<string, string> = {}): Principal => ({
  id: 'p',
  tenant: 't',
  team: undefined,
  user: undefined,
  roles: [],
  attributes,
  method: 'api_key',
  issuer: 'config',
  scope: undefined,
});

interface Row {
  name: string;
  model?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  attributes?: Record<string, string>;
  expect: (run: StageRun) => void;
}

const routedTo = (name: string) => (run: StageRun) => {
  expect(run.refused).toBeUndefined();
  expect(run.upstream?.set['x-lmgate-route']).toBe(name);
  expect(run.audit.route).toBe(name);
  expect(run.answers.some((a) => (a.requestBody ?? a.requestHeaders)?.response?.clearRouteCache)).toBe(true);
};

const rows: Row[] = [
  { name: 'a model goes to the first route serving it', model: 'mock-small', expect: routedTo('small') },
  {
    name: 'an alias is rewritten in the body; the audit keeps both names',
    model: 'gpt-4o',
    expect: (run) => {
      routedTo('large')(run);
      expect(JSON.parse(run.upstream!.body!).model).toBe('llama-70b');
      expect(run.audit).toMatchObject({ gen_ai: { request: { model: 'gpt-4o' } }, upstream_model: 'llama-70b' });
      expect(run.audit.decisions).toContainEqual(expect.objectContaining({ rule_id: 'routing.aliases.gpt-4o' }));
    },
  },
  {
    name: "the route's credential replaces the client's",
    model: 'mock-large',
    headers: { authorization: 'Bearer client-key' },
    expect: (run) => {
      routedTo('large')(run);
      expect(run.upstream?.set.authorization).toBe('Bearer upstream-secret-large');
    },
  },
  {
    name: 'a route without a credential sends none',
    model: 'mock-small',
    expect: (run) => expect(run.upstream?.set.authorization).toBeUndefined(),
  },
  {
    name: 'a model no route serves is 404 model_not_found',
    model: 'gpt-5',
    expect: (run) => expect(run.refused).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' }),
  },
  {
    name: 'PHI goes only to a route that lists it',
    model: 'llama-70b',
    headers: { 'x-data-classes': 'PHI' },
    expect: (run) => {
      routedTo('hipaa')(run);
      expect(run.upstream?.removed).toContain('x-data-classes');
    },
  },
  {
    name: 'PHI for a model no PHI route serves is 403 naming the data class',
    model: 'mock-small',
    headers: { 'x-data-classes': 'phi' },
    expect: (run) =>
      expect(run.refused).toMatchObject({ status: 403, code: 'no_eligible_route', ruleId: 'routing.dataClasses.phi' }),
  },
  {
    name: 'an EU caller reaches only EU-labelled routes',
    model: 'mock-small',
    attributes: { residency: 'eu' },
    headers: { 'x-data-classes': 'pii' },
    expect: routedTo('eu'),
  },
  {
    name: 'an EU caller with a model no EU route may take is refused, not sent to the US',
    model: 'mock-large',
    attributes: { residency: 'eu' },
    expect: (run) =>
      expect(run.refused).toMatchObject({
        status: 403,
        code: 'no_eligible_route',
        ruleId: 'routing.principalLabels.residency',
      }),
  },
  {
    name: 'a model listing takes the default route at its headers',
    method: 'GET',
    path: '/v1/models',
    expect: routedTo('small'),
  },
  {
    name: 'a client cannot pick the route: a spoofed route header is stripped and the route recomputed',
    model: 'mock-small',
    headers: { 'x-lmgate-route': 'large' },
    expect: (run) => {
      routedTo('small')(run);
      expect(run.upstream?.removed).toContain('x-lmgate-route');
      expect(run.answers[0]?.requestHeaders?.response?.clearRouteCache).toBe(true);
    },
  },
];

describe('routing.route', () => {
  for (const row of rows) {
    it(row.name, async () => {
      row.expect(
        await runStage({
          stages: ['llm.api_shape', 'routing.route'],
          config: { routing },
          given: { principal: principal(row.attributes) },
          request: {
            method: row.method ?? 'POST',
            path: row.path ?? '/v1/chat/completions',
            headers: row.headers ?? {},
            ...(row.model === undefined ? {} : { body: { model: row.model, messages: [] } }),
          },
        }),
      );
    });
  }

  it('an alias rewrite and the include_usage splice edit one body without breaking each other', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'routing.route', 'metering.usage'],
      config: { routing },
      request: {
        method: 'POST',
        path: '/v1/chat/completions',
        body: '{"stream":true,"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
      },
    });
    expect(run.upstream?.body).toBe(
      '{"stream_options":{"include_usage":true},"stream":true,"model":"mock-small","messages":[{"role":"user","content":"hi"}]}',
    );
  });

  it('TGI names no model: the default route at its headers, or, with tgiModel, the route serving it (an alias too, the body untouched)', async () => {
    const tgi = (tgiModel?: string) =>
      runStage({
        stages: ['llm.api_shape', 'routing.route'],
        config: { routing: { ...routing, ...(tgiModel ? { tgiModel } : {}) } },
        given: { principal: principal() },
        request: { method: 'POST', path: '/generate', body: '{"inputs":"hi","model":"llama-70b"}' },
      });
    routedTo('small')(await tgi());
    routedTo('large')(await tgi('mock-large'));
    const aliased = await tgi('gpt-4o');
    routedTo('large')(aliased);
    // No body edit: the body goes upstream as the client sent it.
    expect(aliased.upstream?.body).toBeUndefined();
    expect(aliased.audit).toMatchObject({ gen_ai: { request: { model: 'gpt-4o' } }, upstream_model: 'llama-70b' });
  });

  it('a route whose credential cannot be read fails closed with 503', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'routing.route'],
      config: {
        routing: { routes: [{ name: 'x', models: ['*'], credential: { from: 'env:LMGATE_TEST_UNSET_TOKEN' } }] },
      },
      request: { method: 'POST', path: '/v1/chat/completions', body: { model: 'm', messages: [] } },
    });
    expect(run.refused).toMatchObject({ status: 503, code: 'upstream_credential_unavailable' });
    expect(run.upstream?.set.authorization).toBeUndefined();
  });

  it('an alias may not point at another alias', async () => {
    await expect(
      runStage({
        stages: ['llm.api_shape', 'routing.route'],
        config: { routing: { aliases: { a: 'b', b: 'c' } } },
        request: { path: '/v1/models' },
      }),
    ).rejects.toThrow(/do not chain/);
  });
});
