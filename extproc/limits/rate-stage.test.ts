// limits.rate decision table, through the real state machine (runStage) with the memory store on
// a fake clock: which level refuses, the headers a refusal and an admitted response carry, all
// or nothing across levels, token reservation settled to upstream's usage.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { runStage, runStageConfig, type StageRun } from '../../test/harness/run-stage.ts';
import type { Principal } from '../pipeline/context.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { LimitBackend } from './backend.ts';

const principal = (id: string, team = 'research'): Principal => ({
  id,
  tenant: 'acme',
  team,
  user: undefined,
  roles: [],
  attributes: {},
  method: 'api_key',
  issuer: 'config',
  scope: undefined,
});

class FakeClock {
  t = Date.UTC(2026, 10, 24, 12, 0, 0);
  now = () => this.t;
}

const STAGES = ['llm.api_shape', 'limits.rate'];

/** A sequence of requests sharing one limit store and clock. */
function session(limits: Record<string, unknown>) {
  const clock = new FakeClock();
  const config = { limits };
  const backend = new LimitBackend({
    config: runStageConfig({ stages: STAGES, config }),
    logger: pino({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    clock,
  });
  const send = (
    who: Principal,
    body: Record<string, unknown> = { model: 'm1', messages: [] },
    response?: { chunks: string[] },
  ): Promise<StageRun> =>
    runStage({
      stages: STAGES,
      config,
      given: { principal: who },
      request: { path: '/v1/chat/completions', body },
      ...(response ? { response } : {}),
      clock,
      limits: backend,
    });
  return { clock, send, backend };
}

describe('limits.rate', () => {
  it('admits the limit, then refuses with 429, retry-after and x-ratelimit-* naming the level', async () => {
    const s = session({ rate: [{ id: 'per-key', scope: 'key', limit: 3, per: 'minute' }] });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await s.send(principal('k1'));
      expect(run.refused).toBeUndefined();
      remaining.push(run.client!.set['x-ratelimit-remaining-requests']!);
      expect(run.client!.set['x-ratelimit-limit-requests']).toBe('3');
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const run = await s.send(principal('k1'));
    expect(run.refused).toMatchObject({
      status: 429,
      code: 'rate_limit_exceeded',
      type: 'rate_limit_error',
      ruleId: 'limits.rate.per-key',
    });
    expect(run.refused!.message).toContain('key k1');
    // one request every 20 s comes back: the next fits in 20 s
    expect(run.refused!.headers).toMatchObject({
      'retry-after': '20',
      'x-ratelimit-limit-requests': '3',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1m0s',
    });
    expect(run.audit.limits).toEqual([
      { id: 'per-key', level: 'key:k1', unit: 'requests', limit: 3, remaining: 0, decision: 'refused' },
    ]);
    // another key has its own counter
    expect((await s.send(principal('k2'))).refused).toBeUndefined();
    // GCRA: after 20 s exactly one more fits
    s.clock.t += 20_000;
    expect((await s.send(principal('k1'))).refused).toBeUndefined();
    expect((await s.send(principal('k1'))).refused?.code).toBe('rate_limit_exceeded');
  });

  it('nested levels are all or nothing: the team refusing leaves the key counter untouched', async () => {
    const s = session({
      rate: [
        { id: 'per-key', scope: 'key', limit: 2, per: 'minute' },
        { id: 'per-team', scope: 'team', limit: 2, per: 'minute' },
      ],
    });
    expect((await s.send(principal('a'))).refused).toBeUndefined();
    expect((await s.send(principal('b'))).refused).toBeUndefined();
    const refused = await s.send(principal('a'));
    expect(refused.refused?.ruleId).toBe('limits.rate.per-team');
    expect(refused.audit.limits).toEqual([
      expect.objectContaining({ id: 'per-key', level: 'key:a', remaining: 1, decision: 'refused' }),
      expect.objectContaining({ id: 'per-team', level: 'team:research', remaining: 0, decision: 'refused' }),
    ]);
    // another team: key a's counter still has its one request left
    const other = await s.send(principal('a', 'ops'));
    expect(other.refused).toBeUndefined();
    expect(other.audit.limits![0]).toMatchObject({ level: 'key:a', remaining: 0, decision: 'admitted' });
  });

  it('decides the caller levels at the request headers, before the body is sent', async () => {
    const s = session({ rate: [{ id: 'per-key', scope: 'key', limit: 1, per: 'second' }] });
    await s.send(principal('k'));
    const run = await s.send(principal('k'));
    expect(run.refused?.code).toBe('rate_limit_exceeded');
    expect(run.answers).toHaveLength(1); // the request-headers answer: no body message was asked for
    expect(run.audit.endpoint.api).toBe('openai.chat');
  });

  it('a model limit refuses at the body, and the request the headers counted is given back', async () => {
    const s = session({
      rate: [
        { id: 'per-key', scope: 'key', limit: 5, per: 'minute' },
        { id: 'big-model', scope: 'model', ids: ['m-big'], limit: 1, per: 'minute' },
      ],
    });
    expect((await s.send(principal('k'), { model: 'm-big', messages: [] })).refused).toBeUndefined();
    const run = await s.send(principal('k'), { model: 'm-big', messages: [] });
    expect(run.refused).toMatchObject({ code: 'rate_limit_exceeded', ruleId: 'limits.rate.big-model' });
    // the model not listed is not limited; the key has 5 - 1 (first) = 4, minus this one = 3 left
    const other = await s.send(principal('k'), { model: 'm1', messages: [] });
    expect(other.refused).toBeUndefined();
    expect(other.client!.set['x-ratelimit-remaining-requests']).toBe('3');
  });

  it('a route limit counts every request routed there, whatever model or caller', async () => {
    const clock = new FakeClock();
    const config = {
      routing: {
        routes: [
          { name: 'gpu', models: ['m1', 'm2'] },
          { name: 'cpu', models: ['m3'] },
        ],
      },
      limits: { rate: [{ id: 'gpu-pool', scope: 'route', ids: ['gpu'], limit: 2, per: 'minute' }] },
    };
    const stages = ['llm.api_shape', 'routing.route', 'limits.rate'];
    const backend = new LimitBackend({
      config: runStageConfig({ stages, config }),
      logger: pino({ level: 'silent' }),
      metrics: new Metrics({ defaultMetrics: false }),
      clock,
    });
    const send = (who: string, model: string) =>
      runStage({
        stages,
        config,
        given: { principal: principal(who) },
        request: { path: '/v1/chat/completions', body: { model, messages: [] } },
        clock,
        limits: backend,
      });
    expect((await send('a', 'm1')).refused).toBeUndefined();
    expect((await send('b', 'm2')).refused).toBeUndefined();
    const third = await send('c', 'm1');
    expect(third.refused).toMatchObject({ status: 429, ruleId: 'limits.rate.gpu-pool' });
    expect(third.refused!.message).toContain('route gpu');
    expect((await send('c', 'm3')).refused).toBeUndefined();
  });

  it('tokens are reserved from the body and max_tokens, and settled to the usage upstream reports', async () => {
    const s = session({ rate: [{ id: 'tok', scope: 'tenant', unit: 'tokens', limit: 10_000, per: 'minute' }] });
    const body = { model: 'm1', messages: [], max_tokens: 500 };
    const bytes = JSON.stringify(body).length;
    const usage = JSON.stringify({ usage: { prompt_tokens: 20, completion_tokens: 30, total_tokens: 50 } });
    const run = await s.send(principal('k'), body, { chunks: [usage] });
    const reserved = Math.ceil(bytes / 4) + 500;
    expect(run.audit.limits).toEqual([
      {
        id: 'tok',
        level: 'tenant:acme',
        unit: 'tokens',
        limit: 10_000,
        remaining: 10_000 - reserved,
        decision: 'admitted',
        reserved,
        settled: 50,
      },
    ]);
    expect(run.client!.set).toMatchObject({
      'x-ratelimit-limit-tokens': '10000',
      'x-ratelimit-remaining-tokens': String(10_000 - reserved),
    });
    // settled: the next request sees 50 spent, not the reservation
    const next = await s.send(principal('k'), body, { chunks: [usage] });
    expect(next.audit.limits![0]!.remaining).toBe(10_000 - 50 - reserved);
  });

  it('a request with no usage keeps its reservation; one upstream failed is refunded', async () => {
    const s = session({ rate: [{ id: 'tok', scope: 'key', unit: 'tokens', limit: 1000, per: 'hour' }] });
    const body = { model: 'm1', messages: [], max_tokens: 100 };
    const reserved = Math.ceil(JSON.stringify(body).length / 4) + 100;
    const noUsage = await s.send(principal('k'), body, { chunks: ['{}'] });
    expect(noUsage.audit.limits![0]).toMatchObject({ reserved, settled: reserved });
    const failed = await runStage({
      stages: STAGES,
      config: { limits: { rate: [{ id: 'tok', scope: 'key', unit: 'tokens', limit: 1000, per: 'hour' }] } },
      given: { principal: principal('k') },
      request: { path: '/v1/chat/completions', body },
      response: { status: 503, chunks: ['{}'] } as never,
      clock: s.clock,
      limits: s.backend,
    });
    expect(failed.audit.limits![0]).toMatchObject({ reserved, settled: 0 });
    const after = await s.send(principal('k'), body, { chunks: ['{}'] });
    expect(after.audit.limits![0]!.remaining).toBe(1000 - 2 * reserved);
  });

  it('a request whose reservation can never fit is refused, naming max_tokens', async () => {
    const s = session({ rate: [{ id: 'tok', scope: 'key', unit: 'tokens', limit: 100, per: 'minute' }] });
    const run = await s.send(principal('k'), { model: 'm1', messages: [], max_tokens: 4096 });
    expect(run.refused).toMatchObject({ status: 429, ruleId: 'limits.rate.tok' });
    expect(run.refused!.message).toContain('max_tokens');
    expect(run.refused!.headers['x-ratelimit-limit-tokens']).toBe('100');
  });

  it('a caller without a team is not held by team limits', async () => {
    const s = session({ rate: [{ id: 'per-team', scope: 'team', limit: 1, per: 'minute' }] });
    const solo = { ...principal('k'), team: undefined };
    expect((await s.send(solo)).refused).toBeUndefined();
    const run = await s.send(solo);
    expect(run.refused).toBeUndefined();
    expect(run.audit.limits).toBeNull();
    expect(run.client!.set['x-ratelimit-limit-requests']).toBeUndefined();
  });
});
