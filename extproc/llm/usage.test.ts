import { describe, expect, it } from 'vitest';
import type { ApiKind } from './shapes.ts';
import { ollamaUsage, openAiUsage, type ResponseFormat, responseFormat, type Usage, usageFromJson } from './usage.ts';

describe('responseFormat', () => {
  const table: [string | undefined, ResponseFormat][] = [
    ['text/event-stream', 'sse'],
    ['text/event-stream; charset=utf-8', 'sse'],
    ['Text/Event-Stream;charset=UTF-8', 'sse'],
    ['  text/event-stream  ', 'sse'],
    ['application/x-ndjson', 'ndjson'],
    ['application/ndjson', 'ndjson'],
    ['application/jsonl', 'ndjson'],
    ['application/jsonlines', 'ndjson'],
    ['APPLICATION/X-NDJSON; charset=utf-8', 'ndjson'],
    ['application/json', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['application/problem+json', 'json'],
    ['application/vnd.api+json; x=1', 'json'],
    ['text/plain', 'other'],
    ['text/html; charset=utf-8', 'other'],
    ['application/octet-stream', 'other'],
    ['application/jsonx', 'other'],
    ['', 'other'],
    [undefined, 'other'],
  ];
  for (const [ct, want] of table) it(`${JSON.stringify(ct)} → ${want}`, () => expect(responseFormat(ct)).toBe(want));
});

describe('usageFromJson', () => {
  const u = (inputTokens: number, outputTokens: number, totalTokens: number): Usage => ({
    inputTokens,
    outputTokens,
    totalTokens,
    source: 'upstream',
  });
  const table: [string, ApiKind, string, Usage | undefined, string | undefined][] = [
    [
      'OpenAI chat',
      'openai.chat',
      '{"id":"c","object":"chat.completion","model":"llama-3.1-8b","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}',
      u(12, 3, 15),
      'llama-3.1-8b',
    ],
    [
      'OpenAI completions',
      'openai.completions',
      '{"model":"m","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}',
      u(5, 7, 12),
      'm',
    ],
    [
      'total as reported, not recomputed',
      'openai.chat',
      '{"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":13}}',
      u(5, 7, 13),
      undefined,
    ],
    [
      'total absent: summed',
      'openai.chat',
      '{"usage":{"prompt_tokens":5,"completion_tokens":7}}',
      u(5, 7, 12),
      undefined,
    ],
    [
      'OpenAI embeddings: no completion_tokens',
      'openai.embeddings',
      '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"bge-m3","usage":{"prompt_tokens":8,"total_tokens":8}}',
      u(8, 0, 8),
      'bge-m3',
    ],
    [
      'Ollama chat',
      'ollama.chat',
      '{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"hi"},"done_reason":"stop","done":true,"total_duration":1,"prompt_eval_count":26,"eval_count":298}',
      u(26, 298, 324),
      'llama3.2',
    ],
    [
      'Ollama generate, prompt cached (no prompt_eval_count)',
      'ollama.generate',
      '{"model":"l","done":true,"eval_count":4}',
      u(0, 4, 4),
      'l',
    ],
    [
      'Ollama embed',
      'ollama.embed',
      '{"model":"all-minilm","embeddings":[[0.1]],"prompt_eval_count":8}',
      u(8, 0, 8),
      'all-minilm',
    ],
    [
      'Ollama model load: no counts → no usage',
      'ollama.generate',
      '{"model":"l","response":"","done":true,"done_reason":"load"}',
      undefined,
      'l',
    ],
    ['OpenAI: usage absent', 'openai.chat', '{"model":"m","choices":[]}', undefined, 'm'],
    ['OpenAI: usage null', 'openai.chat', '{"model":"m","usage":null}', undefined, 'm'],
    ['OpenAI: usage without prompt_tokens', 'openai.chat', '{"usage":{"completion_tokens":3}}', undefined, undefined],
    ['OpenAI: negative count', 'openai.chat', '{"usage":{"prompt_tokens":-1}}', undefined, undefined],
    ['OpenAI: string count', 'openai.chat', '{"usage":{"prompt_tokens":"5"}}', undefined, undefined],
    [
      'OpenAI kind reads no Ollama counts',
      'openai.chat',
      '{"prompt_eval_count":3,"eval_count":4}',
      undefined,
      undefined,
    ],
    ['Ollama kind reads no OpenAI usage', 'ollama.chat', '{"usage":{"prompt_tokens":3}}', undefined, undefined],
    ['invalid JSON', 'openai.chat', '{"usage":{"prompt_tokens":3', undefined, undefined],
    ['empty body', 'openai.chat', '', undefined, undefined],
    ['array', 'openai.chat', '[{"usage":{"prompt_tokens":3}}]', undefined, undefined],
    [
      'non-string model',
      'openai.chat',
      '{"model":3,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
      u(1, 1, 2),
      undefined,
    ],
    [
      'with BOM',
      'openai.chat',
      '\uFEFF{"model":"m","usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}',
      u(1, 0, 1),
      'm',
    ],
  ];
  for (const [name, kind, body, usage, model] of table) {
    it(name, () => expect(usageFromJson(kind, Buffer.from(body))).toEqual({ usage, model }));
  }
});

describe('usage helpers', () => {
  it('openAiUsage ignores non-objects', () => {
    for (const v of [undefined, null, 3, 'x', true]) expect(openAiUsage(v)).toBeUndefined();
  });
  it('openAiUsage keeps the cached prompt tokens OpenAI and vLLM report, never more than the prompt', () => {
    expect(
      openAiUsage({ prompt_tokens: 100, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 64 } }),
    ).toEqual({ inputTokens: 100, outputTokens: 5, totalTokens: 105, source: 'upstream', cachedInputTokens: 64 });
    expect(openAiUsage({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 99 } })?.cachedInputTokens).toBe(
      10,
    );
    expect(openAiUsage({ prompt_tokens: 10, prompt_tokens_details: null })).not.toHaveProperty('cachedInputTokens');
  });
  it('ollamaUsage needs at least one count', () => {
    expect(ollamaUsage({ done: true })).toBeUndefined();
    expect(ollamaUsage({ prompt_eval_count: 2 })).toEqual({
      inputTokens: 2,
      outputTokens: 0,
      totalTokens: 2,
      source: 'upstream',
    });
  });
});
