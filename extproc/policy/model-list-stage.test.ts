// policy.model_list decision table, through the real state machine (runStage).
import { describe, expect, it } from 'vitest';
import { runStage } from '../../test/harness/run-stage.ts';
import type { Principal } from '../pipeline/context.ts';
import { compilePatterns } from './patterns.ts';

const principal = (models: string[] | undefined): Principal => ({
  id: 'p',
  tenant: 't',
  team: undefined,
  user: undefined,
  roles: [],
  attributes: {},
  method: 'api_key',
  issuer: 'config',
  scope:
    models === undefined
      ? undefined
      : { endpoints: 'all', models: compilePatterns(models), source: 'identity.apiKeys.p' },
});

const openaiList = JSON.stringify({
  object: 'list',
  data: ['llama-8b', 'llama-70b', 'acme-claims-ft'].map((id) => ({ id, object: 'model', owned_by: 'vllm' })),
});
const ollamaTags = JSON.stringify({
  models: [
    { name: 'llama3:8b', model: 'llama3:8b', size: 1 },
    { name: 'mistral:7b', model: 'mistral:7b', size: 2 },
  ],
});

async function list(
  path: string,
  body: string,
  models: string[] | undefined,
  status = 200,
  extra: { config?: Record<string, unknown>; stages?: string[]; tenant?: string } = {},
) {
  const p = principal(models);
  return runStage({
    stages: extra.stages ?? ['policy.model_list'],
    ...(extra.config ? { config: extra.config } : {}),
    given: { principal: extra.tenant ? { ...p, tenant: extra.tenant } : p },
    request: { method: 'GET', path },
    response: {
      status,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      chunks: [body],
    },
  });
}

describe('policy.model_list', () => {
  it('an OpenAI listing keeps only the models the caller may use', async () => {
    const run = await list('/v1/models', openaiList, ['llama-*']);
    expect(JSON.parse(run.client!.body).data.map((m: { id: string }) => m.id)).toEqual(['llama-8b', 'llama-70b']);
    expect(run.client?.removed).toContain('content-length');
    expect(run.audit.decisions).toContainEqual(
      expect.objectContaining({ stage: 'policy.model_list', reason: 'listing filtered to 2 of 3 models' }),
    );
  });

  it('an Ollama listing is filtered by name', async () => {
    const run = await list('/api/tags', ollamaTags, ['mistral:*']);
    expect(JSON.parse(run.client!.body).models.map((m: { name: string }) => m.name)).toEqual(['mistral:7b']);
  });

  it('a caller without a model restriction gets the listing untouched', async () => {
    const run = await list('/v1/models', openaiList, undefined);
    expect(run.client?.body).toBe(openaiList);
    expect(run.client?.removed ?? []).not.toContain('content-length');
  });

  it('a listing the gate cannot read shows nothing rather than everything', async () => {
    const run = await list('/v1/models', '{"object":"list","data":', ['llama-*']);
    expect(JSON.parse(run.client!.body)).toEqual({ object: 'list', data: [] });
    expect(run.audit.failure).toContain('could not be filtered');
  });

  const ids = (body: string) => JSON.parse(body).data.map((m: { id: string }) => m.id);

  it('models the policy rules would refuse, or another tenant owns, are not listed', async () => {
    const config = {
      policy: {
        tenantModels: { acme: ['acme-*'] },
        rules: [
          { id: 'list', action: 'ALLOW', to: { endpoints: ['openai.models'] } },
          { id: 'chat-llama', action: 'ALLOW', to: { endpoints: ['openai.chat'], models: ['llama-*'] } },
        ],
      },
    };
    const stages = ['llm.api_shape', 'policy.rules', 'policy.model_list'];
    expect(ids((await list('/v1/models', openaiList, undefined, 200, { config, stages })).client!.body)).toEqual([
      'llama-8b',
      'llama-70b',
    ]);
    const owner = await list('/v1/models', openaiList, undefined, 200, {
      config: { policy: { tenantModels: { acme: ['acme-*'] } } },
      stages,
      tenant: 'acme',
    });
    expect(ids(owner.client!.body)).toEqual(['llama-8b', 'llama-70b', 'acme-claims-ft']);
    const other = await list('/v1/models', openaiList, undefined, 200, {
      config: { policy: { tenantModels: { acme: ['acme-*'] } } },
      stages,
      tenant: 'globex',
    });
    expect(ids(other.client!.body)).toEqual(['llama-8b', 'llama-70b']);
  });

  it('models no route serves are not listed', async () => {
    const run = await list('/v1/models', openaiList, undefined, 200, {
      config: { routing: { routes: [{ name: 'r', models: ['llama-70b'] }] } },
      stages: ['llm.api_shape', 'routing.route', 'policy.model_list'],
    });
    expect(ids(run.client!.body)).toEqual(['llama-70b']);
  });

  it('models the kill switch disabled are not listed', async () => {
    const run = await list('/v1/models', openaiList, undefined, 200, {
      config: { killSwitch: { models: ['llama-70b'] } },
      stages: ['llm.api_shape', 'killswitch.model', 'policy.model_list'],
    });
    expect(ids(run.client!.body)).toEqual(['llama-8b', 'acme-claims-ft']);
  });

  it('an error answer from upstream passes as it is', async () => {
    const err = '{"error":{"message":"boom"}}';
    const run = await list('/v1/models', err, ['llama-*'], 500);
    expect(run.client?.body ?? err).toBe(err);
  });
});
