// limits.budget decision table, through the real state machine (runStage) with the memory store
// on a fake clock: reservations, settlement to priced usage, refunds, exhaustion (429 or a
// downgrade that routing and policy then see), threshold metrics and the webhook.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type ResponseDescription, runStage, runStageConfig, type StageRun } from '../../test/harness/run-stage.ts';
import type { BudgetCheck, CredentialScope, Principal } from '../pipeline/context.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { LimitBackend } from './backend.ts';
import type { CounterItem } from './counters.ts';
import { MAX_SUBJECT_LABELS } from './metrics.ts';

const principal = (id: string, scope?: CredentialScope): Principal => ({
  id,
  tenant: 'acme',
  team: 'research',
  user: undefined,
  roles: [],
  attributes: {},
  method: 'api_key',
  issuer: 'config',
  scope,
});

const STAGES = ['llm.api_shape', 'limits.budget', 'routing.route', 'policy.access', 'metering.usage'];
const usage = (input: number, output: number) =>
  JSON.stringify({
    model: 'x',
    usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
  });

/** A sequence of requests sharing one limit store and clock. */
function session(config: Record<string, unknown>) {
  const clock = { t: Date.UTC(2026, 10, 24, 12), now: () => clock.t };
  const metrics = new Metrics({ defaultMetrics: false });
  const backend = new LimitBackend({
    config: runStageConfig({ stages: STAGES, config }),
    logger: pino({ level: 'silent' }),
    metrics,
    clock,
  });
  const send = (opts: {
    who?: Principal;
    body?: Record<string, unknown>;
    path?: string;
    response?: ResponseDescription;
  }): Promise<StageRun> =>
    runStage({
      stages: STAGES,
      config,
      given: { principal: opts.who ?? principal('k') },
      request: {
        path: opts.path ?? '/v1/chat/completions',
        body: opts.body ?? { model: 'big', messages: [], max_tokens: 100 },
      },
      response: opts.response ?? { chunks: [usage(10, 20)] },
      clock,
      limits: backend,
    });
  return { clock, send, backend, metrics };
}

const PRICES = { metering: { prices: { big: { input: 1000, output: 1000 }, small: { input: 10, output: 10 } } } };
const body = { model: 'big', messages: [], max_tokens: 100 };
const bodyTokens = Math.ceil(JSON.stringify(body).length / 4);

/** Key k's token budget counter for the test day, read back with a zero adjustment. */
const KEY_K_TOKENS_TODAY: CounterItem = {
  kind: 'budget',
  key: 'lmgate:lim:{t:acme}:tok:b:2026-11-24:key:k',
  limit: 10_000,
  period: 0,
  cost: 0,
  queue: 0,
};

describe('limits.budget', () => {
  it('reserves the priced estimate, settles to the priced usage, and refuses once spent', async () => {
    const s = session({
      ...PRICES,
      limits: { budgets: [{ id: 'acme', scope: 'tenant', amount: 0.1, unit: 'currency', period: 'month' }] },
    });
    const first = await s.send({});
    const reserved = ((bodyTokens + 100) * 1000) / 1e6;
    expect(first.refused).toBeUndefined();
    expect(first.audit.budgets).toEqual([
      {
        id: 'acme',
        level: 'tenant:acme',
        unit: 'currency',
        period: '2026-11-01',
        amount: 0.1,
        reserved,
        settled: (30 * 1000) / 1e6,
        refunded: reserved - 0.03,
        state: 'admitted',
      },
    ]);
    // 0.03 spent: two more pass (0.06, 0.09), the third is admitted while 0.01 is left, the fourth not
    for (let i = 0; i < 3; i++) expect((await s.send({})).refused).toBeUndefined();
    const spent = await s.send({});
    expect(spent.refused).toMatchObject({ status: 429, code: 'budget_exceeded', ruleId: 'limits.budgets.acme' });
    // retry-after: until the month ends (Dec 1, 00:00 UTC)
    expect(Number(spent.refused!.headers['retry-after'])).toBe((Date.UTC(2026, 11, 1) - s.clock.t) / 1000);
    expect(spent.audit.budgets![0]).toMatchObject({ state: 'refused', reserved: 0 });
    // a new month starts from nothing
    s.clock.t = Date.UTC(2026, 11, 1, 0, 0, 1);
    expect((await s.send({})).refused).toBeUndefined();
  });

  it('a request upstream failed is refunded whole; one without upstream usage is settled to the tokenizer count', async () => {
    const s = session({
      limits: { budgets: [{ id: 'tok', scope: 'key', amount: 10_000, unit: 'tokens', period: 'day' }] },
    });
    const failed = await s.send({ response: { status: 500, chunks: ['{}'] } });
    expect(failed.audit.budgets![0]).toMatchObject({
      reserved: bodyTokens + 100,
      settled: 0,
      refunded: bodyTokens + 100,
    });
    const silent = await s.send({ response: { chunks: ['{}'] } });
    const counted = silent.audit.metering.total_tokens!;
    expect(silent.audit.metering.source).not.toBe('upstream');
    expect(silent.audit.budgets![0]).toMatchObject({ settled: counted, refunded: bodyTokens + 100 - counted });
    const used = s.backend.memory.adjust([KEY_K_TOKENS_TODAY], [0]);
    expect(used.after[0]).toBe(counted);
  });

  it('a client that cancels mid-stream is charged what it received; the rest of the reservation is refunded', async () => {
    const s = session({
      limits: { budgets: [{ id: 'tok', scope: 'key', amount: 10_000, unit: 'tokens', period: 'day' }] },
    });
    const sse = (content: string) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'big', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    const streamed = { model: 'big', messages: [{ role: 'user', content: 'tell me' }], max_tokens: 100, stream: true };
    const run = await s.send({
      body: streamed,
      response: {
        headers: { 'content-type': 'text/event-stream' },
        // the usage event never reaches the gate: the client is gone after two chunks
        chunks: [sse('one two'), sse(' three four'), sse(' five'), `data: ${usage(50, 50)}\n\n`, 'data: [DONE]\n\n'],
        cancelAfter: 2,
      },
    });
    expect(run.audit.outcome).toBe('cancelled');
    const charged = run.audit.metering.total_tokens!;
    expect(charged).toBeGreaterThan(0);
    const reserved = run.audit.budgets![0]!.reserved;
    expect(run.audit.budgets![0]).toMatchObject({ state: 'admitted', settled: charged, refunded: reserved - charged });
    const used = s.backend.memory.adjust([KEY_K_TOKENS_TODAY], [0]);
    expect(used.after[0]).toBe(charged);
  });

  it("counts in the period of the budget's time zone: 20:00 UTC on the 24th is already the 25th in Tokyo", async () => {
    const s = session({
      limits: {
        budgets: [
          { id: 'tokyo', scope: 'key', amount: 10_000, unit: 'tokens', period: 'day', timeZone: 'Asia/Tokyo' },
          { id: 'utc', scope: 'key', amount: 10_000, unit: 'tokens', period: 'day' },
        ],
      },
    });
    s.clock.t = Date.UTC(2026, 10, 24, 20);
    const run = await s.send({});
    expect(run.audit.budgets!.map((b) => [b.id, b.period])).toEqual([
      ['tokyo', '2026-11-25'],
      ['utc', '2026-11-24'],
    ]);
    // Tokyo's next period begins at its midnight, 15:00 UTC, in the middle of the UTC day
    s.clock.t = Date.UTC(2026, 10, 25, 15);
    const next = await s.send({});
    expect(next.audit.budgets!.map((b) => [b.id, b.period])).toEqual([
      ['tokyo', '2026-11-26'],
      ['utc', '2026-11-25'],
    ]);
  });

  it('a spent budget with downgradeTo sends the request to the cheaper model, routed and judged as that model', async () => {
    const s = session({
      ...PRICES,
      routing: {
        routes: [
          { name: 'gpu-big', models: ['big'] },
          { name: 'gpu-small', models: ['small'] },
        ],
      },
      limits: {
        budgets: [{ id: 'acme', scope: 'tenant', amount: 0.01, unit: 'currency', period: 'day', downgradeTo: 'small' }],
      },
    });
    expect((await s.send({})).upstream?.set['x-lmgate-route']).toBe('gpu-big');
    const run = await s.send({});
    expect(run.refused).toBeUndefined();
    expect(JSON.parse(run.upstream!.body!).model).toBe('small');
    expect(run.upstream!.set['x-lmgate-route']).toBe('gpu-small');
    expect(run.audit.budgets![0]).toMatchObject({ state: 'downgraded', reserved: ((bodyTokens + 100) * 10) / 1e6 });
    expect(run.audit.decisions).toContainEqual(
      expect.objectContaining({ rule_id: 'limits.budgets.acme.downgradeTo', effect: 'modify' }),
    );
    // policy judges the downgraded model: a key that may not use it is refused
    const onlyBig: CredentialScope = { endpoints: 'all', models: (m) => m === 'big', source: 'identity.apiKeys.k' };
    const judged = await s.send({ who: principal('k', onlyBig) });
    expect(judged.refused).toMatchObject({ status: 403, code: 'model_not_allowed' });
    // its reservation is given back: the refused request spent nothing
    expect(judged.audit.budgets![0]).toMatchObject({ state: 'downgraded', settled: 0 });
  });

  it('a TGI call, whose body names no model, is held by a token budget and never downgraded', async () => {
    const tgi = { inputs: 'hello', parameters: { max_new_tokens: 100 } };
    const details = JSON.stringify({ generated_text: 'x', details: { generated_tokens: 300, prefill: [{ id: 1 }] } });
    const s = session({
      ...PRICES,
      routing: { tgiModel: 'big' },
      limits: {
        budgets: [{ id: 'acme', scope: 'tenant', amount: 250, unit: 'tokens', period: 'day', downgradeTo: 'small' }],
      },
    });
    const first = await s.send({ path: '/generate', body: tgi, response: { chunks: [details] } });
    expect(first.refused).toBeUndefined();
    expect(first.audit.budgets![0]).toMatchObject({ state: 'admitted', settled: 301 });
    // Spent: TGI serves one model, so the body cannot be sent to `small`: refused instead.
    const second = await s.send({ path: '/generate', body: tgi });
    expect(second.refused).toMatchObject({ status: 429, code: 'budget_exceeded' });
    expect(second.upstream).toBeUndefined();

    // Without routing.tgiModel the call names no model, and is held all the same.
    const bare = session({
      limits: { budgets: [{ id: 't', scope: 'tenant', amount: 50, unit: 'tokens', period: 'day' }] },
    });
    const held = await bare.send({ path: '/generate', body: tgi, response: { chunks: [details] } });
    expect(held.audit.budgets![0]).toMatchObject({ state: 'admitted', settled: 301 });
    expect((await bare.send({ path: '/generate', body: tgi })).refused).toMatchObject({ code: 'budget_exceeded' });
  });

  it('crossing thresholds raises the metric and one webhook call each', async () => {
    const got: unknown[] = [];
    let fails = 1;
    const server: Server = createServer((req, res) => {
      let b = '';
      req.on('data', (c) => {
        b += c;
      });
      req.on('end', () => {
        // the first delivery fails: the event is retried
        if (fails-- > 0) {
          res.statusCode = 503;
          res.end();
          return;
        }
        got.push(JSON.parse(b));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    try {
      const s = session({
        limits: {
          budgets: [{ id: 'tok', scope: 'team', amount: 100, unit: 'tokens', period: 'week', thresholds: [50, 80] }],
          webhook: { url, attempts: 3 },
        },
      });
      // each request reserves bodyTokens + 5 and settles to 30
      const small = { model: 'big', messages: [], max_tokens: 5 };
      await s.send({ body: small, response: { chunks: [usage(10, 20)] } });
      await s.send({ body: small, response: { chunks: [usage(10, 20)] } });
      await s.send({ body: small, response: { chunks: [usage(10, 20)] } });
      await new Promise((r) => setTimeout(r, 1500)); // the retry is 1 s after the failed attempt
      await s.backend.webhook!.idle();
      expect(got).toEqual([
        expect.objectContaining({
          type: 'budget.threshold',
          budget: 'tok',
          level: 'team:research',
          threshold: 50,
          amount: 100,
        }),
        expect.objectContaining({ threshold: 80, period: '2026-11-23', unit: 'tokens' }),
      ]);
      const text = await s.metrics.metricsText();
      expect(text).toContain('lmgate_budget_threshold_crossings_total{budget="tok",threshold="50"} 1');
      expect(text).toMatch(/lmgate_budget_used_ratio\{budget="tok",subject="team:research"\} 0\.9/);
      expect(text).toContain('lmgate_budget_webhook_total{result="sent"} 2');
    } finally {
      server.close();
    }
  });

  it(`the used-ratio gauge keeps ${MAX_SUBJECT_LABELS} subjects; later ones are "other"`, async () => {
    // a budget without ids holds every key: subjects are as many as callers
    const config = { limits: { budgets: [{ id: 'all', scope: 'key', amount: 100, unit: 'tokens', period: 'day' }] } };
    const s = session(config);
    const cfg = runStageConfig({ stages: STAGES, config }).limits.budgets[0]!;
    for (let i = 0; i < MAX_SUBJECT_LABELS + 500; i++)
      s.backend.observeBudget(cfg, { level: `key:k${i}`, period: '2026-11-24' } as BudgetCheck, 0, 10);
    const series = (await s.metrics.metricsText()).split('\n').filter((l) => l.startsWith('lmgate_budget_used_ratio{'));
    expect(series).toHaveLength(MAX_SUBJECT_LABELS + 1);
    expect(series).toContain('lmgate_budget_used_ratio{budget="all",subject="other"} 0.1');
  });
});
