// policy.access decision table, through the real state machine (runStage). The caller is given as
// a principal, so each row reads the same whether the caller presented a key, a JWT or a cert.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage, type StageRun } from '../../test/harness/run-stage.ts';
import type { Principal } from '../pipeline/context.ts';
import { compilePatterns } from './patterns.ts';

const scoped = (endpoints: string[] | 'all', models: string[]): Principal =>
  jwtPrincipal({
    method: 'api_key',
    issuer: 'config',
    id: 'bob',
    scope: {
      endpoints: endpoints === 'all' ? 'all' : new Set(endpoints),
      models: compilePatterns(models),
      anyModel: models.includes('*'),
      source: 'identity.apiKeys.bob',
    },
  });
const chat = { path: '/v1/chat/completions', body: { model: 'mock-small', messages: [] } };

interface Row {
  name: string;
  principal: Principal;
  request: { method?: string; path: string; body?: Record<string, unknown> };
  unknownEndpoints?: 'reject' | 'allow';
  tgiModel?: string;
  expect: (run: StageRun) => void;
}

const allowed = (run: StageRun) => expect(run.refused).toBeUndefined();
const refused = (status: number, code: string, ruleId?: string) => (run: StageRun) =>
  expect(run.refused).toMatchObject({ status, code, ...(ruleId ? { ruleId } : {}) });

const rows: Row[] = [
  {
    name: 'a caller identified without a scope (a JWT) is not restricted by this stage',
    principal: jwtPrincipal(),
    request: chat,
    expect: allowed,
  },
  {
    name: 'a scoped caller may use a model its scope names',
    principal: scoped(['openai.chat'], ['mock-small']),
    request: chat,
    expect: (run) => {
      allowed(run);
      expect(run.audit.decisions).toContainEqual(
        expect.objectContaining({ rule_id: 'identity.apiKeys.bob.models', effect: 'allow' }),
      );
    },
  },
  {
    name: 'a scoped caller asking for another model gets 403 naming the scope that decided',
    principal: scoped('all', ['mock-small']),
    request: { path: '/v1/chat/completions', body: { model: 'mock-large', messages: [] } },
    expect: refused(403, 'model_not_allowed', 'identity.apiKeys.bob.models'),
  },
  {
    name: 'wildcards in the scope match model families',
    principal: scoped('all', ['llama-3.1-*']),
    request: { path: '/v1/chat/completions', body: { model: 'llama-3.1-8b-instruct', messages: [] } },
    expect: allowed,
  },
  {
    name: 'a scoped caller calling an endpoint outside its scope gets 403 at request headers',
    principal: scoped(['openai.chat'], ['*']),
    request: { path: '/v1/embeddings', body: { model: 'mock-embed', input: 'x' } },
    expect: refused(403, 'endpoint_not_allowed', 'identity.apiKeys.bob.endpoints'),
  },
  {
    name: 'a path that is no LLM API is 404 by default, whoever calls',
    principal: jwtPrincipal(),
    request: { path: '/admin/shutdown' },
    expect: refused(404, 'unsupported_endpoint'),
  },
  {
    name: 'with unknownEndpoints allow, an unscoped caller reaches a non-LLM path',
    principal: jwtPrincipal(),
    request: { path: '/health' },
    unknownEndpoints: 'allow',
    expect: allowed,
  },
  {
    name: 'with unknownEndpoints allow, a caller scoped to LLM endpoints still may not',
    principal: scoped(['openai.chat'], ['*']),
    request: { path: '/health' },
    unknownEndpoints: 'allow',
    expect: refused(403, 'endpoint_not_allowed', 'identity.apiKeys.bob.endpoints'),
  },
  {
    name: 'a caller whose scope has every endpoint reaches a non-LLM path when allowed',
    principal: scoped('all', ['*']),
    request: { path: '/health' },
    unknownEndpoints: 'allow',
    expect: allowed,
  },
  {
    name: 'TGI names no model: a caller whose scope admits every model may call it',
    principal: scoped('all', ['*']),
    request: { path: '/generate', body: { inputs: 'x' } },
    expect: allowed,
  },
  {
    name: 'TGI names no model: a caller limited to some models is refused, whatever the body claims',
    principal: scoped('all', ['mock-small']),
    request: { path: '/generate', body: { inputs: 'x', model: 'mock-small' } },
    expect: refused(403, 'model_not_allowed', 'identity.apiKeys.bob.models'),
  },
  {
    name: 'with routing.tgiModel, TGI calls are judged as that model',
    principal: scoped('all', ['mock-small']),
    request: { path: '/generate_stream', body: { inputs: 'x' } },
    tgiModel: 'mock-small',
    expect: allowed,
  },
  {
    name: 'with routing.tgiModel, a caller not scoped to it is refused',
    principal: scoped('all', ['mock-large']),
    request: { path: '/', body: { inputs: 'x', stream: true } },
    tgiModel: 'mock-small',
    expect: refused(403, 'model_not_allowed', 'identity.apiKeys.bob.models'),
  },
];

describe('policy.access', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const run = await runStage({
        stages: ['llm.api_shape', 'policy.access'],
        given: { principal: row.principal },
        config: {
          policy: { unknownEndpoints: row.unknownEndpoints ?? 'reject' },
          ...(row.tgiModel ? { routing: { tgiModel: row.tgiModel } } : {}),
        },
        request: row.request,
      });
      row.expect(run);
    });
  }

  it('a pipeline where nothing provides the principal is refused before any request', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'policy.access'],
      given: {},
      request: chat,
    }).catch((e: Error) => e);
    // Without a principal provider the pipeline itself is refused before any request.
    expect(String(run)).toMatch(/needs the principal fact/);
  });
});
