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
    request?: { chunked?: boolean; cancelAfterMs?: number },
  ): Promise<StageRun> =>
    runStage({
      stages: STAGES,
      config,
      given: { principal: who },
      request: { path: '/v1/chat/completions', body, ...request },
      ...(response ? { response } : {}),
      clock,
      limits: backend,
    });
  return { clock, send, backend };
}

/** A chat body of exactly `n` bytes of JSON. */
function bodyOf(n: number, model = 'm1'): Record<string, unknown> {
  const base = { model, messages: [{ role: 'user', content: '' }] };
  const pad = n - JSON.stringify(base).length;
  return { model, messages: [{ role: 'user', content: 'x'.repeat(pad) }] };
}

const timed = async <T>(p: Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await p;
  return [r, performance.now() - t0];
};

const overrides = (run: StageRun): number => run.answers.filter((a) => a.overrideMessageTimeout !== undefined).length;

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
    // Another spelling of the same model (Ollama resolves it so) is the same counter.
    for (const spelling of ['M-BIG', 'library/m-big:latest'])
      expect((await s.send(principal('k'), { model: spelling, messages: [] })).refused, spelling).toMatchObject({
        ruleId: 'limits.rate.big-model',
      });
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

  it('a request for several completions (n, best_of) reserves max_tokens for each', async () => {
    const s = session({ rate: [{ id: 'tok', scope: 'key', unit: 'tokens', limit: 100_000, per: 'hour' }] });
    const body = { model: 'm1', messages: [], max_tokens: 100, n: 4 };
    const run = await s.send(principal('k'), body, { chunks: ['{}'] });
    expect(run.audit.limits![0]).toMatchObject({ reserved: Math.ceil(JSON.stringify(body).length / 4) + 400 });
  });

  it("Ollama's num_predict -1 (no limit) reserves the default, as an unset one does, never less", async () => {
    const limits = { rate: [{ id: 'tok', scope: 'key', unit: 'tokens', limit: 100_000, per: 'hour' }] };
    const body = { model: 'l', prompt: 'x', stream: false, options: { num_predict: -1 } };
    const run = await runStage({
      stages: STAGES,
      config: { limits },
      given: { principal: principal('k') },
      request: { path: '/api/generate', body },
    });
    expect(run.audit.limits![0]).toMatchObject({ reserved: Math.ceil(JSON.stringify(body).length / 4) + 1024 });
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

  it('counts request body bytes at the request headers from content-length, before the body is read', async () => {
    const s = session({ rate: [{ id: 'upload', scope: 'tenant', unit: 'bytes', limit: 1000, per: 'second' }] });
    const first = await s.send(principal('k'), bodyOf(600));
    expect(first.refused).toBeUndefined();
    expect(first.audit.limits).toEqual([
      { id: 'upload', level: 'tenant:acme', unit: 'bytes', limit: 1000, remaining: 400, decision: 'admitted' },
    ]);
    expect(first.client!.set).toMatchObject({
      'x-ratelimit-limit-bytes': '1000',
      'x-ratelimit-remaining-bytes': '400',
    });
    const second = await s.send(principal('k2'), bodyOf(600)); // another key of the same tenant
    expect(second.refused).toMatchObject({ status: 429, code: 'rate_limit_exceeded', ruleId: 'limits.rate.upload' });
    expect(second.refused!.message).toBe('Rate limit "upload" reached for tenant acme: 1000 bytes per second.');
    expect(second.answers).toHaveLength(1); // refused at the headers: no body was asked for
    // 200 of the 600 bytes come back 200 ms later
    expect(second.refused!.headers).toMatchObject({ 'retry-after': '1', 'x-ratelimit-remaining-bytes': '400' });
    s.clock.t += 200;
    expect((await s.send(principal('k'), bodyOf(600))).refused).toBeUndefined();
  });

  it('counts the bytes of a body without content-length when it arrives', async () => {
    const s = session({ rate: [{ id: 'upload', scope: 'key', unit: 'bytes', limit: 1000, per: 'second' }] });
    const first = await s.send(principal('k'), bodyOf(700), undefined, { chunked: true });
    expect(first.refused).toBeUndefined();
    expect(first.audit.limits![0]).toMatchObject({ unit: 'bytes', remaining: 300 });
    const second = await s.send(principal('k'), bodyOf(700), undefined, { chunked: true });
    expect(second.refused?.ruleId).toBe('limits.rate.upload');
    expect(second.answers).toHaveLength(2); // headers passed, the body was refused
    // a GET has no body and takes no bytes
    const get = await runStage({
      stages: STAGES,
      config: { limits: { rate: [{ id: 'upload', scope: 'key', unit: 'bytes', limit: 1000, per: 'second' }] } },
      given: { principal: principal('k') },
      request: { path: '/v1/models' },
      clock: s.clock,
      limits: s.backend,
    });
    expect(get.refused).toBeUndefined();
    expect(get.audit.limits).toBeNull();
  });

  it('a body larger than a byte limit is refused whatever the bucket, saying so', async () => {
    const s = session({
      rate: [{ id: 'upload', scope: 'tenant', unit: 'bytes', limit: 500, per: 'second', queueMs: 100 }],
    });
    const [run, ms] = await timed(s.send(principal('k'), bodyOf(600)));
    expect(run.refused!.message).toBe(
      'Request too large for the tenant rate limit "upload": its body is 600 bytes, the limit is 500 per second.',
    );
    // refused after the queue's wait, like any request the queue cannot admit
    expect(ms).toBeGreaterThanOrEqual(95);
    expect(run.audit.limits![0]).toMatchObject({ decision: 'refused', queued_ms: expect.any(Number) });
  });

  it('a body-time refusal gives back the bytes the headers counted', async () => {
    const s = session({
      rate: [
        { id: 'upload', scope: 'key', unit: 'bytes', limit: 1000, per: 'minute' },
        { id: 'big-model', scope: 'model', ids: ['m-big'], limit: 1, per: 'minute' },
      ],
    });
    const big = bodyOf(300, 'm-big');
    expect((await s.send(principal('k'), big)).refused).toBeUndefined();
    expect((await s.send(principal('k'), big)).refused?.ruleId).toBe('limits.rate.big-model');
    // 1000 - 300 (first) = 700 left, the refused one given back
    const next = await s.send(principal('k'), bodyOf(300));
    expect(next.audit.limits![0]).toMatchObject({ id: 'upload', remaining: 400 });
  });

  describe('queues (queueMs)', () => {
    // 20 a second: one turn every 50 ms; a queue of 120 ms holds two turns.
    const paced = { rate: [{ id: 'paced', scope: 'key', limit: 20, per: 'second', queueMs: 120 }] };

    it('a request over the limit waits for its turn and is admitted; past the queue it waits the queue and is refused', async () => {
      const s = session(paced);
      for (let i = 0; i < 20; i++) expect((await s.send(principal('k'))).refused).toBeUndefined();
      const [first, t1] = await timed(s.send(principal('k')));
      expect(first.refused).toBeUndefined();
      expect(t1).toBeGreaterThanOrEqual(45);
      expect(first.audit.limits![0]).toMatchObject({ decision: 'admitted', remaining: 0 });
      expect(first.audit.limits![0]!.queued_ms).toBeGreaterThanOrEqual(45);
      expect(first.audit.limits![0]!.left_queue).toBeUndefined();
      // the gate asked Envoy to wait longer than message_timeout for this answer
      expect(overrides(first)).toBe(1);
      const [second, t2] = await timed(s.send(principal('k')));
      expect(second.refused).toBeUndefined();
      expect(t2).toBeGreaterThanOrEqual(95);
      const [third, t3] = await timed(s.send(principal('k')));
      expect(third.refused).toMatchObject({ status: 429, ruleId: 'limits.rate.paced' });
      expect(t3).toBeGreaterThanOrEqual(115);
      expect(third.audit.limits![0]).toMatchObject({ decision: 'refused' });
      expect(third.audit.limits![0]!.queued_ms).toBeGreaterThanOrEqual(115);
      // a refused request reserves nothing: the clock 150 ms on, the next turn is free again
      s.clock.t += 150;
      const [fourth, t4] = await timed(s.send(principal('k')));
      expect(fourth.refused).toBeUndefined();
      expect(t4).toBeLessThan(45);
      expect(fourth.audit.limits![0]!.queued_ms).toBeUndefined();
      const text = await s.backend.metrics.queued.get();
      const by = Object.fromEntries(text.values.map((v) => [`${v.labels.limit}:${v.labels.result}`, v.value]));
      expect(by).toEqual({ 'paced:admitted': 2, 'paced:refused': 1 });
    });

    it('a request whose client leaves while it waits gives its turn back to the next in line', async () => {
      const s = session(paced);
      for (let i = 0; i < 20; i++) expect((await s.send(principal('k'))).refused).toBeUndefined();
      // its turn is 50 ms away; its client goes away after 10
      const left = await s.send(principal('k'), undefined, undefined, { cancelAfterMs: 10 });
      expect(left.audit.outcome).toBe('cancelled');
      expect(left.audit.limits![0]).toMatchObject({ id: 'paced', queued_ms: expect.any(Number), left_queue: true });
      expect(s.backend.waiting.count).toBe(0);
      // the next request gets the turn it left (50 ms away), not the one after it (100 ms)
      const [next, t] = await timed(s.send(principal('k')));
      expect(next.refused).toBeUndefined();
      expect(t).toBeGreaterThanOrEqual(45);
      expect(t).toBeLessThan(90);
      const by = Object.fromEntries(
        (await s.backend.metrics.queued.get()).values.map((v) => [`${v.labels.limit}:${v.labels.result}`, v.value]),
      );
      expect(by).toEqual({ 'paced:left': 1, 'paced:admitted': 1 });
    });

    it('at most limits.maxWaiting requests wait; the next one is refused at once', async () => {
      const s = session({ ...paced, maxWaiting: 1 });
      for (let i = 0; i < 20; i++) await s.send(principal('k'));
      const t0 = performance.now();
      const [a, b] = await Promise.all([
        s.send(principal('k')).then((r) => [r, performance.now() - t0] as const),
        s.send(principal('k')).then((r) => [r, performance.now() - t0] as const),
      ]);
      expect(a[0].refused).toBeUndefined();
      expect(a[1]).toBeGreaterThanOrEqual(45);
      expect(b[0].refused?.ruleId).toBe('limits.rate.paced');
      expect(b[1]).toBeLessThan(a[1]);
      expect(b[0].audit.limits![0]!.queued_ms).toBeUndefined();
      expect(s.backend.waiting.count).toBe(0);
      const full = (await s.backend.metrics.queued.get()).values.find((v) => v.labels.result === 'full');
      expect(full?.value).toBe(1);
    });

    it('a level without a queue refuses at once even beside one with a queue', async () => {
      const s = session({
        rate: [
          { id: 'paced', scope: 'key', limit: 20, per: 'second', queueMs: 120 },
          { id: 'strict', scope: 'tenant', limit: 20, per: 'second' },
        ],
      });
      for (let i = 0; i < 20; i++) await s.send(principal('k'));
      const [run, ms] = await timed(s.send(principal('k')));
      expect(run.refused?.ruleId).toBe('limits.rate.strict');
      expect(ms).toBeLessThan(45);
    });
  });

  it('a queue must fit the slow path: queueMs at most server.maxMessageDeadlineMs - 100', async () => {
    const { configSchema } = await import('../config/schema.ts');
    const r = configSchema.safeParse({
      limits: { rate: [{ id: 'q', scope: 'key', limit: 1, per: 'second', queueMs: 1401 }] },
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['limits.rate.0.queueMs', 'must be at most server.maxMessageDeadlineMs - 100 (1400)'],
    ]);
    expect(
      configSchema.safeParse({ limits: { rate: [{ id: 'q', scope: 'key', limit: 1, per: 'second', queueMs: 1400 }] } })
        .success,
    ).toBe(true);
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
