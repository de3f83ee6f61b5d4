// metering.usage decision table, through the real state machine (runStage): usage is read from
// what upstream reports, never estimated; a stream whose client did not ask for usage gets it
// asked for upstream and withheld from the client, so the client sees the stream it asked for.
import { describe, expect, it } from 'vitest';
import { runStage, type StageRun } from '../../test/harness/run-stage.ts';

const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const delta = (content: string) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  model: 'mock-small',
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});
const usageEvent = {
  id: 'c1',
  object: 'chat.completion.chunk',
  model: 'mock-small',
  choices: [],
  usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
};
const stream = [sse(delta('Hel')), sse(delta('lo')), sse(usageEvent), 'data: [DONE]\n\n'];
const sseHeaders = { 'content-type': 'text/event-stream' };

interface Row {
  name: string;
  body: Record<string, unknown>;
  path?: string;
  inject?: boolean;
  response: { status?: number; headers?: Record<string, string>; chunks: string[] };
  expect: (run: StageRun) => void;
}

const rows: Row[] = [
  {
    name: 'a stream whose client did not ask for usage: asked upstream, withheld from the client, metered',
    body: { model: 'mock-small', messages: [], stream: true },
    response: { headers: sseHeaders, chunks: stream },
    expect: (run) => {
      expect(JSON.parse(run.upstream!.body!).stream_options).toEqual({ include_usage: true });
      expect(run.client!.body).not.toContain('"usage"');
      expect(run.client!.body).toContain('data: [DONE]');
      expect(run.audit.gen_ai.usage).toMatchObject({ input_tokens: 4, output_tokens: 2 });
      expect(run.audit.decisions).toContainEqual(
        expect.objectContaining({ rule_id: 'metering.injectStreamUsage', effect: 'modify' }),
      );
    },
  },
  {
    name: 'a stream whose client asked for usage is forwarded untouched and metered',
    body: { model: 'mock-small', messages: [], stream: true, stream_options: { include_usage: true } },
    response: { headers: sseHeaders, chunks: stream },
    expect: (run) => {
      expect(run.upstream!.body).toBeUndefined();
      expect(run.client!.body).toBe(stream.join(''));
      expect(run.audit.metering.total_tokens).toBe(6);
    },
  },
  {
    name: 'with injectStreamUsage off the request is untouched, and a stream without usage is counted, estimated for a model without its own tokenizer',
    body: { model: 'mock-small', messages: [], stream: true },
    inject: false,
    response: { headers: sseHeaders, chunks: [sse(delta('Hi')), 'data: [DONE]\n\n'] },
    expect: (run) => {
      expect(run.upstream!.body).toBeUndefined();
      // 3 priming the reply; "Hi" is one token in o200k_base, the default encoding.
      expect(run.audit.gen_ai.usage).toEqual({ input_tokens: 3, output_tokens: 1 });
      expect(run.audit.metering).toMatchObject({ total_tokens: 4, source: 'estimated' });
    },
  },
  {
    name: 'a stream without usage is charged its reasoning too (billed as output), not only its content',
    body: { model: 'mock-small', messages: [], stream: true },
    inject: false,
    response: {
      headers: sseHeaders,
      chunks: [
        sse({ choices: [{ index: 0, delta: { reasoning_content: 'one two' }, finish_reason: null }] }),
        sse({ choices: [{ index: 0, delta: { reasoning_content: ' three' }, finish_reason: null }] }),
        sse(delta('Hi')),
        'data: [DONE]\n\n',
      ],
    },
    // "one two three" is three tokens in o200k_base, "Hi" one.
    expect: (run) => expect(run.audit.gen_ai.usage).toEqual({ input_tokens: 3, output_tokens: 4 }),
  },
  {
    name: 'a JSON answer without usage is charged its reasoning and refusal too',
    body: { model: 'mock-small', messages: [] },
    response: {
      chunks: [
        JSON.stringify({
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: 'Hi', reasoning_content: 'one two three', refusal: 'no' },
              finish_reason: 'stop',
            },
          ],
        }),
      ],
    },
    expect: (run) => expect(run.audit.gen_ai.usage).toEqual({ input_tokens: 3, output_tokens: 5 }),
  },
  {
    name: 'an Ollama stream cut before its counts is charged its thinking too',
    path: '/api/chat',
    body: { model: 'llama3', messages: [] },
    response: {
      headers: { 'content-type': 'application/x-ndjson' },
      chunks: [
        '{"model":"llama3","message":{"content":"","thinking":"one two three"},"done":false}\n',
        '{"model":"llama3","message":{"content":"Hi"},"done":false}\n',
      ],
    },
    expect: (run) => expect(run.audit.gen_ai.usage).toMatchObject({ output_tokens: 4 }),
  },
  {
    name: 'a JSON completion is metered from its usage object',
    body: { model: 'mock-small', messages: [], max_tokens: 50 },
    response: {
      chunks: [
        JSON.stringify({
          model: 'mock-small-0613',
          usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
        }),
      ],
    },
    expect: (run) => {
      expect(run.audit.gen_ai.usage).toMatchObject({ input_tokens: 3, output_tokens: 5 });
      expect(run.audit.gen_ai.response.model).toBe('mock-small-0613');
      // schema 2: OpenTelemetry GenAI names, and the upstream share of the latency
      expect(run.audit.gen_ai).toMatchObject({
        operation: { name: 'chat' },
        request: { model: 'mock-small', max_tokens: 50 },
      });
      expect(run.audit.latency_ms.upstream).toBeGreaterThanOrEqual(0);
      expect(run.audit.metering).toEqual({
        total_tokens: 8,
        source: 'upstream',
        cached_input_tokens: null,
        cost: null,
        labels: {},
      });
    },
  },
  {
    name: 'an Ollama stream is metered from its final NDJSON record',
    path: '/api/chat',
    body: { model: 'llama3', messages: [] },
    response: {
      headers: { 'content-type': 'application/x-ndjson' },
      chunks: [
        '{"model":"llama3","message":{"content":"hi"},"done":false}\n',
        '{"model":"llama3","done":true,"prompt_eval_count":7,"eval_count":9}\n',
      ],
    },
    expect: (run) => expect(run.audit.gen_ai.usage).toMatchObject({ input_tokens: 7, output_tokens: 9 }),
  },
  {
    name: 'TGI /generate ignores "stream": true and answers JSON: its text is still counted, not 0',
    path: '/generate',
    body: { inputs: 'count me please', stream: true },
    response: { headers: { 'content-type': 'application/json' }, chunks: ['{"generated_text":"one two three"}'] },
    expect: (run) =>
      expect(run.audit).toMatchObject({
        gen_ai: { usage: { input_tokens: 3, output_tokens: 3 } },
        metering: { source: 'estimated' },
      }),
  },
  {
    name: 'TGI stream: usage from the last event’s details',
    path: '/generate_stream',
    body: { inputs: 'hi' },
    response: {
      headers: sseHeaders,
      chunks: [
        'data:{"token":{"id":1,"text":"a","logprob":0,"special":false},"generated_text":null,"details":null}\n\n',
        'data:{"token":{"id":2,"text":"</s>","logprob":0,"special":true},"generated_text":"a","details":{"finish_reason":"eos_token","generated_tokens":2,"input_length":5,"seed":null}}\n\n',
      ],
    },
    expect: (run) =>
      expect(run.audit).toMatchObject({
        gen_ai: { usage: { input_tokens: 5, output_tokens: 2 } },
        metering: { source: 'upstream' },
      }),
  },
  {
    name: 'TGI without an upstream prompt count: the output is still upstream’s generated_tokens, whole or streamed',
    path: '/generate',
    body: { inputs: 'count me please', parameters: { details: true } },
    response: {
      headers: { 'content-type': 'application/json' },
      chunks: [
        '{"generated_text":"one two three","details":{"finish_reason":"length","generated_tokens":7,"prefill":[],"tokens":[]}}',
      ],
    },
    expect: (run) =>
      expect(run.audit).toMatchObject({
        gen_ai: { usage: { input_tokens: 3, output_tokens: 7 } },
        metering: { source: 'estimated' },
      }),
  },
  {
    name: 'TGI stream before 2.0 (no input_length): output from details, prompt from the tokenizer',
    path: '/generate_stream',
    body: { inputs: 'count me please' },
    response: {
      headers: sseHeaders,
      chunks: [
        'data:{"token":{"id":1,"text":"a","logprob":0,"special":false},"generated_text":null,"details":null}\n\n',
        'data:{"token":{"id":2,"text":"</s>","logprob":0,"special":true},"generated_text":"a","details":{"finish_reason":"eos_token","generated_tokens":9,"seed":null}}\n\n',
      ],
    },
    expect: (run) =>
      expect(run.audit).toMatchObject({
        gen_ai: { usage: { input_tokens: 3, output_tokens: 9 } },
        metering: { source: 'estimated' },
      }),
  },
  {
    name: "an upstream error's body is not read, and no usage is invented",
    body: { model: 'mock-small', messages: [] },
    response: { status: 500, chunks: ['{"error":"boom"}'] },
    expect: (run) => {
      expect(run.answers.some((a) => a.modeOverride?.responseBodyMode)).toBe(false);
      expect(run.audit).toMatchObject({ gen_ai: { usage: null }, outcome: 'upstream_error', status: 500 });
    },
  },
];

describe('metering.usage', () => {
  for (const row of rows) {
    it(row.name, async () => {
      row.expect(
        await runStage({
          stages: ['llm.api_shape', 'metering.usage'],
          config: { metering: { injectStreamUsage: row.inject ?? true } },
          request: { path: row.path ?? '/v1/chat/completions', body: row.body },
          response: row.response,
        }),
      );
    });
  }
});
