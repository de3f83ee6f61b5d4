// End to end, the openai client → real Envoy → LM Gate → the mock model server: token counts in
// the audit equal the mock's ground truth (for gpt-4o the mock reports real o200k_base counts,
// the same the gate computes when usage is absent), streamed or not, with upstream usage or
// without; a client that cancels mid-stream is charged the prompt and what it received; cost and
// attribution labels land in the record.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countText } from '../../extproc/metering/tokenizer.ts';
import { runCli } from '../harness/cli.ts';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const key = makeKey('meter', { tenant: 'acme', models: ['gpt-*', 'mock-*'] });
const prices = { 'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 } };

let stack: Stack;
let openai: OpenAI;

beforeAll(async () => {
  stack = await startStack({
    keys: [key],
    mock: { chunks: 6 },
    gateExtra: { metering: { prices, labels: { project: { header: 'x-project' } } } },
  });
  openai = new OpenAI({ baseURL: stack.baseURL, apiKey: key.key, maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
});

const messages = [{ role: 'user' as const, content: 'Wie viele Tokens hat dieser Satz über Zölle, 日本 und 🙂?' }];
const lastId = () =>
  stack.mock.received.filter((r) => r.path === '/v1/chat/completions').at(-1)!.headers['x-request-id'] as string;

/** Ground truth: the usage the mock reports for this prompt, non-streamed, with usage. */
async function groundTruth(model: string) {
  const r = await openai.chat.completions.create({ model, messages });
  return { input_tokens: r.usage!.prompt_tokens, output_tokens: r.usage!.completion_tokens };
}

describe('metering through real Envoy', () => {
  it('non-streamed and streamed, with upstream usage: the audit has the mock’s counts, priced', async () => {
    const truth = await groundTruth('gpt-4o');
    let rec = await stack.gate.auditFor(lastId());
    expect(rec.gen_ai.usage).toEqual(truth);
    expect(rec.metering).toMatchObject({ source: 'upstream', cost: { currency: 'USD' } });
    expect(rec.metering.cost.amount).toBeCloseTo((truth.input_tokens * 2.5 + truth.output_tokens * 10) / 1e6, 12);

    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages, stream: true },
      { headers: { 'x-project': 'apollo' } },
    );
    for await (const _ of stream);
    rec = await stack.gate.auditFor(lastId());
    expect(rec.gen_ai.usage).toEqual(truth);
    expect(rec.metering).toMatchObject({ source: 'upstream', labels: { project: 'apollo' } });
  });

  it('without upstream usage, streamed and not: the gate’s tokenizer count equals the ground truth', async () => {
    const truth = await groundTruth('gpt-4o');
    const never = { headers: { 'x-mock-usage': 'never' } };
    await openai.chat.completions.create({ model: 'gpt-4o', messages }, never);
    let rec = await stack.gate.auditFor(lastId());
    expect(rec.gen_ai.usage).toEqual(truth);
    expect(rec.metering.source).toBe('tokenizer');

    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, never);
    for await (const _ of stream);
    rec = await stack.gate.auditFor(lastId());
    expect(rec.gen_ai.usage).toEqual(truth);
    expect(rec.metering).toMatchObject({ source: 'tokenizer', cost: { currency: 'USD' } });
  });

  it('a stream without usage for a model with no tokenizer of its own is counted and marked estimated', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'mock-small', messages, stream: true },
      { headers: { 'x-mock-usage': 'never' } },
    );
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    const rec = await stack.gate.auditFor(lastId());
    expect(rec.metering.source).toBe('estimated');
    expect(rec.gen_ai.usage.output_tokens).toBe(countText('o200k_base', text));
  });

  it('a client that cancels mid-stream is charged the prompt and the tokens it received', async () => {
    const truth = await groundTruth('gpt-4o');
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages, stream: true },
      { headers: { 'x-mock-chunk-delay-ms': '300' } },
    );
    let received = '';
    let contentChunks = 0;
    for await (const c of stream) {
      const t = c.choices[0]?.delta?.content ?? '';
      received += t;
      if (t !== '' && ++contentChunks === 2) break; // leaving the loop aborts the request
    }
    const rec = await stack.gate.auditFor(lastId());
    expect(rec.outcome).toBe('cancelled');
    expect(rec.gen_ai.usage).toEqual({
      input_tokens: truth.input_tokens,
      output_tokens: countText('o200k_base', received),
    });
    expect(rec.gen_ai.usage.output_tokens).toBeLessThan(truth.output_tokens);
    expect(rec.metering.source).toBe('estimated');
    expect(rec.metering.cost.amount).toBeGreaterThan(0);
  });

  it('lm-gate report totals over the audit log equal the sum of its records for the same window', async () => {
    const records = await stack.gate.audit();
    const times = records.map((r) => Date.parse(r.time)).sort((a, b) => a - b);
    // A window that cuts the run in two, so that it is the window that is summed, not the file.
    const from = new Date(times[0]!).toISOString();
    const to = new Date(times[Math.floor(times.length / 2)]!).toISOString();
    const inWindow = records.filter((r) => r.time >= from && r.time < to);
    expect(inWindow.length).toBeGreaterThan(0);
    expect(inWindow.length).toBeLessThan(records.length);

    const run = await runCli([
      'report',
      '--from',
      from,
      '--to',
      to,
      '--by',
      'tenant,model',
      '--format',
      'json',
      stack.gate.auditPath,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as Record<string, number>[];
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(rows.map((r) => r.requests!))).toBe(inWindow.length);
    expect(sum(rows.map((r) => r.input_tokens!))).toBe(sum(inWindow.map((r) => r.gen_ai.usage?.input_tokens ?? 0)));
    expect(sum(rows.map((r) => r.output_tokens!))).toBe(sum(inWindow.map((r) => r.gen_ai.usage?.output_tokens ?? 0)));
    expect(sum(rows.map((r) => r.cost ?? 0))).toBeCloseTo(sum(inWindow.map((r) => r.metering.cost?.amount ?? 0)), 12);
    const acme = rows.find((r) => (r.tenant as unknown) === 'acme' && (r.model as unknown) === 'gpt-4o');
    expect(acme?.requests).toBe(inWindow.filter((r) => r.upstream_model === 'gpt-4o').length);
  });
});
