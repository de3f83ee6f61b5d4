// metering.usage beyond upstream usage, through the real state machine (runStage): tokens counted
// with a tokenizer when upstream reports none (exact for a model with its own encoding, else
// estimated), a cancelled stream charged what the client received, cost under the price table,
// unpriced models refused or priced 0, and attribution labels.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage } from '../../test/harness/run-stage.ts';
import { countText } from './tokenizer.ts';

const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const delta = (content: string, model = 'gpt-4o') => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  model,
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});
const sseHeaders = { 'content-type': 'text/event-stream' };
const o200k = (t: string) => countText('o200k_base', t);
/** OpenAI's chat prompt count: 3 per message, its role and content, 3 priming the reply. */
const chatPrompt = (...contents: string[]) => 3 + contents.reduce((n, c) => n + 3 + o200k('user') + o200k(c), 0);

const prompt = 'Summarise the quarterly report on Überseehandel in two sentences, please.';
const reply = ['The quarter', ' closed with revenue up 12 %', ', driven by exports to 日本.'];

describe('token counts when upstream reports none', () => {
  it('a stream without usage, for a model with its own encoding: counted exactly (source tokenizer)', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      config: { metering: { injectStreamUsage: false } },
      request: {
        path: '/v1/chat/completions',
        body: { model: 'gpt-4o', messages: [{ role: 'user', content: prompt }], stream: true },
      },
      response: { headers: sseHeaders, chunks: [...reply.map((r) => sse(delta(r))), 'data: [DONE]\n\n'] },
    });
    expect(run.audit.gen_ai.usage).toEqual({ input_tokens: chatPrompt(prompt), output_tokens: o200k(reply.join('')) });
    expect(run.audit.metering.source).toBe('tokenizer');
  });

  it('a JSON completion without usage: prompt and answer (tool calls too) counted from the bodies', async () => {
    const args = '{"city":"Zürich","unit":"celsius"}';
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      request: {
        path: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] },
      },
      response: {
        chunks: [
          JSON.stringify({
            model: 'gpt-4o-mini',
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content: 'Checking.',
                  tool_calls: [{ id: 't', type: 'function', function: { name: 'weather', arguments: args } }],
                },
              },
            ],
          }),
        ],
      },
    });
    expect(run.audit.gen_ai.usage).toEqual({
      input_tokens: chatPrompt(prompt),
      output_tokens: o200k('Checking.') + o200k('weather') + o200k(args),
    });
    expect(run.audit.metering.source).toBe('tokenizer');
  });

  it('a client that cancels mid-stream is charged the prompt and what it received, estimated', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      request: {
        path: '/v1/chat/completions',
        body: { model: 'gpt-4o', messages: [{ role: 'user', content: prompt }], stream: true },
      },
      response: {
        headers: sseHeaders,
        chunks: [
          ...reply.map((r) => sse(delta(r))),
          sse({ id: 'c1', choices: [], usage: { prompt_tokens: 99, completion_tokens: 99 } }),
          'data: [DONE]\n\n',
        ],
        cancelAfter: 2,
      },
    });
    expect(run.audit.outcome).toBe('cancelled');
    expect(run.audit.gen_ai.usage).toEqual({
      input_tokens: chatPrompt(prompt),
      output_tokens: o200k(reply[0]! + reply[1]!),
    });
    expect(run.audit.metering.source).toBe('estimated');
  });

  it('an upstream error is not charged', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      config: { metering: { prices: { '*': { input: 1, output: 1 } } } },
      request: { path: '/v1/chat/completions', body: { model: 'gpt-4o', messages: [] } },
      response: { status: 500, chunks: ['{"error":"boom"}'] },
    });
    expect(run.audit.metering).toMatchObject({ total_tokens: null, source: null, cost: null });
  });

  it('special-token text in a prompt is ordinary text, not a failure', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      request: {
        path: '/v1/completions',
        body: { model: 'gpt-4o', prompt: 'a <|endoftext|> b' },
      },
      response: { chunks: [JSON.stringify({ choices: [{ index: 0, text: 'ok' }] })] },
    });
    expect(run.audit.gen_ai.usage?.input_tokens).toBe(o200k('a <|endoftext|> b'));
    expect(run.audit.gen_ai.usage?.input_tokens).toBeGreaterThan(3);
  });
});

const usageBody = (usage: Record<string, unknown>, model = 'gpt-4o') =>
  JSON.stringify({ model, choices: [{ index: 0, message: { role: 'assistant', content: 'ok' } }], usage });

describe('cost', () => {
  const prices = {
    'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
    'llama-*': { input: 0.2, output: 0.4, currency: 'EUR' },
  };

  it('prices upstream usage, cached prompt tokens at their own price', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      config: { metering: { prices } },
      request: { path: '/v1/chat/completions', body: { model: 'gpt-4o', messages: [] } },
      response: {
        chunks: [
          usageBody({
            prompt_tokens: 1000,
            completion_tokens: 200,
            total_tokens: 1200,
            prompt_tokens_details: { cached_tokens: 400 },
          }),
        ],
      },
    });
    expect(run.audit.metering.cached_input_tokens).toBe(400);
    expect(run.audit.metering.cost?.currency).toBe('USD');
    expect(run.audit.metering.cost?.amount).toBeCloseTo((600 * 2.5 + 400 * 1.25 + 200 * 10) / 1e6, 12);
  });

  it("a route's prices come first", async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      given: { route: { name: 'onprem', labels: {} } },
      config: { metering: { prices, routePrices: { onprem: { 'llama-*': { input: 0.01, output: 0.01 } } } } },
      request: { path: '/v1/chat/completions', body: { model: 'llama-3.1-8b', messages: [] } },
      response: { chunks: [usageBody({ prompt_tokens: 1000, completion_tokens: 1000 }, 'llama-3.1-8b')] },
    });
    expect(run.audit.metering.cost).toEqual({ amount: expect.closeTo(0.00002, 12), currency: 'USD' });
  });

  it('unknownModel refuse: 403 model_not_priced before anything goes upstream', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      config: { metering: { prices, unknownModel: 'refuse' } },
      request: { path: '/v1/chat/completions', body: { model: 'mistral-large', messages: [] } },
    });
    expect(run.refused).toMatchObject({ status: 403, code: 'model_not_priced', ruleId: 'metering.unknownModel' });
    expect(run.upstream).toBeUndefined();
    expect(run.audit).toMatchObject({ outcome: 'rejected', error: { code: 'model_not_priced' } });
  });

  it('unknownModel price_zero_warn: cost 0 in the default currency, counted in metrics', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      given: { principal: jwtPrincipal({ tenant: 'acme' }) },
      config: { metering: { prices } },
      request: { path: '/v1/chat/completions', body: { model: 'mistral-large', messages: [] } },
      response: { chunks: [usageBody({ prompt_tokens: 10, completion_tokens: 5 }, 'mistral-large')] },
    });
    expect(run.audit.metering.cost).toEqual({ amount: 0, currency: 'USD' });
    const text = await run.metrics.metricsText();
    expect(text).toContain('lmgate_unpriced_requests_total{model="mistral-large"} 1');
    expect(text).toContain(
      'lmgate_tenant_tokens_total{tenant="acme",model="mistral-large",direction="input",source="upstream"} 10',
    );
    expect(text).toContain('lmgate_cost_total{tenant="acme",model="mistral-large",currency="USD"} 0');
  });

  it('the cost counter adds up by tenant and model', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      given: { principal: jwtPrincipal({ tenant: 'acme' }) },
      config: { metering: { prices } },
      request: { path: '/v1/chat/completions', body: { model: 'llama-3', messages: [] } },
      response: { chunks: [usageBody({ prompt_tokens: 1_000_000, completion_tokens: 0 }, 'llama-3')] },
    });
    expect(await run.metrics.metricsText()).toContain(
      'lmgate_cost_total{tenant="acme",model="llama-3",currency="EUR"} 0.2',
    );
  });

  it('without prices, cost is null and nothing is refused', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      config: { metering: { unknownModel: 'refuse' } },
      request: { path: '/v1/chat/completions', body: { model: 'anything', messages: [] } },
      response: { chunks: [usageBody({ prompt_tokens: 1, completion_tokens: 1 }, 'anything')] },
    });
    expect(run.refused).toBeUndefined();
    expect(run.audit.metering.cost).toBeNull();
  });
});

describe('attribution labels', () => {
  it('reads a header and a principal attribute; a value outside the charset is null', async () => {
    const labels = { project: { header: 'x-project' }, environment: { claim: 'env' }, cost_center: { header: 'x-cc' } };
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      given: { principal: jwtPrincipal({ attributes: { env: 'prod' } }) },
      config: { metering: { labels } },
      request: {
        path: '/v1/chat/completions',
        headers: { 'x-project': 'apollo-11', 'x-cc': 'drop table; --' },
        body: { model: 'gpt-4o', messages: [] },
      },
      response: { chunks: [usageBody({ prompt_tokens: 1, completion_tokens: 1 })] },
    });
    expect(run.audit.metering.labels).toEqual({ project: 'apollo-11', environment: 'prod', cost_center: null });
  });

  it('an x-lmgate-* header cannot be named: hygiene strips those from clients', () => {
    return expect(
      runStage({
        stages: ['metering.usage', 'llm.api_shape'],
        config: { metering: { labels: { project: { header: 'x-lmgate-project' } } } },
        request: { path: '/v1/models' },
      }),
    ).rejects.toThrow(/x-lmgate/);
  });
});

describe('bounds', () => {
  it('a prompt over 256 KiB is not kept to the end of the request: estimated from its size', async () => {
    const content = 'x'.repeat(300 * 1024);
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      request: { path: '/v1/chat/completions', body: { model: 'gpt-4o', messages: [{ role: 'user', content }] } },
      response: { chunks: [JSON.stringify({ choices: [{ index: 0, message: { content: 'ok' } }] })] },
    });
    const bytes = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }).length;
    expect(run.audit.gen_ai.usage).toEqual({ input_tokens: Math.ceil(bytes / 4), output_tokens: o200k('ok') });
    expect(run.audit.metering.source).toBe('estimated');
  });
});
