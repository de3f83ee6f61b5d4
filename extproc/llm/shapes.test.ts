import { describe, expect, it } from 'vitest';
import { type ApiKind, bodyWithStreamUsage, classifyPath, parseRequestBody } from './shapes.ts';
import { responseFormat, usageFromJson } from './usage.ts';

describe('classifyPath', () => {
  const table: [string, string, ApiKind][] = [
    ['POST', '/v1/chat/completions', 'openai.chat'],
    ['POST', '/v1/chat/completions?api-version=1', 'openai.chat'],
    ['POST', '/v1/chat/completions/', 'openai.chat'],
    ['GET', '/v1/chat/completions', 'unknown'],
    ['POST', '/v1/completions', 'openai.completions'],
    ['POST', '/v1/embeddings', 'openai.embeddings'],
    ['GET', '/v1/models', 'openai.models'],
    ['GET', '/v1/models/mock-small', 'openai.models'],
    ['GET', '/v1/models/a/b', 'unknown'],
    ['POST', '/api/chat', 'ollama.chat'],
    ['POST', '/api/generate', 'ollama.generate'],
    ['POST', '/api/embed', 'ollama.embed'],
    ['POST', '/api/embeddings', 'ollama.embed'],
    ['GET', '/api/tags', 'ollama.tags'],
    ['POST', '/chat/completions', 'unknown'],
    ['DELETE', '/v1/models', 'unknown'],
    ['POST', '/v1/chat/completionsX', 'unknown'],
  ];
  for (const [m, p, want] of table) it(`${m} ${p} → ${want}`, () => expect(classifyPath(m, p)).toBe(want));
});

describe('parseRequestBody', () => {
  const bad: [ApiKind, string, string, string | null][] = [
    ['openai.chat', '', 'empty', null],
    ['openai.chat', '{"model":', 'not valid JSON', null],
    ['openai.chat', '[1]', 'JSON object', null],
    ['openai.chat', 'null', 'JSON object', null],
    ['openai.chat', '{"messages":[]}', '"model"', 'model'],
    ['openai.chat', '{"model":3,"messages":[]}', '"model"', 'model'],
    ['openai.chat', '{"model":"m"}', '"messages"', 'messages'],
    ['openai.chat', '{"model":"m","messages":{}}', '"messages"', 'messages'],
    ['openai.chat', '{"model":"m","messages":[],"stream":"yes"}', '"stream"', 'stream'],
    ['openai.chat', '{"model":"m","messages":[],"stream_options":[]}', '"stream_options"', 'stream_options'],
    ['openai.completions', '{"model":"m"}', '"prompt"', 'prompt'],
    ['openai.embeddings', '{"model":"m"}', '"input"', 'input'],
    ['ollama.chat', '{"model":"m"}', '"messages"', 'messages'],
  ];
  for (const [kind, body, msg, param] of bad) {
    it(`${kind} ${body || '(empty)'} → 400 mentioning ${msg}`, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.message).toContain(msg);
        expect(r.param).toBe(param);
        if (body) expect(r.message).not.toContain(body);
      }
    });
  }

  const good: [ApiKind, string, { stream: boolean; clientWantsUsage: boolean }][] = [
    ['openai.chat', '{"model":"m","messages":[]}', { stream: false, clientWantsUsage: true }],
    ['openai.chat', '{"model":"m","messages":[],"stream":true}', { stream: true, clientWantsUsage: false }],
    [
      'openai.chat',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}',
      { stream: true, clientWantsUsage: true },
    ],
    ['openai.chat', '\uFEFF{"model":"m","messages":[]}', { stream: false, clientWantsUsage: true }],
    ['ollama.chat', '{"model":"m","messages":[]}', { stream: true, clientWantsUsage: true }],
    ['ollama.generate', '{"model":"m","stream":false}', { stream: false, clientWantsUsage: true }],
    ['openai.embeddings', '{"model":"m","input":"x","stream":true}', { stream: false, clientWantsUsage: true }],
  ];
  for (const [kind, body, want] of good) {
    it(`${kind} ${body} → ${JSON.stringify(want)}`, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      expect(r.ok && { stream: r.request.stream, clientWantsUsage: r.request.clientWantsUsage }).toEqual(want);
    });
  }

  it('bodyWithStreamUsage adds include_usage, keeps other stream_options, and is undefined when not needed', () => {
    const parse = (b: string) => {
      const r = parseRequestBody('openai.chat', Buffer.from(b));
      if (!r.ok) throw new Error(r.message);
      return r.request;
    };
    const out = bodyWithStreamUsage(
      parse('{"model":"m","messages":[],"stream":true,"stream_options":{"continuous_usage_stats":true}}'),
    );
    expect(JSON.parse(out!.toString()).stream_options).toEqual({ continuous_usage_stats: true, include_usage: true });
    expect(bodyWithStreamUsage(parse('{"model":"m","messages":[]}'))).toBeUndefined();
    expect(
      bodyWithStreamUsage(parse('{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}')),
    ).toBeUndefined();
  });
});

describe('usage and formats', () => {
  const formats: [string | undefined, string][] = [
    ['text/event-stream', 'sse'],
    ['text/event-stream; charset=utf-8', 'sse'],
    ['application/x-ndjson', 'ndjson'],
    ['application/json; charset=utf-8', 'json'],
    ['application/problem+json', 'json'],
    ['text/plain', 'other'],
    [undefined, 'other'],
  ];
  for (const [ct, want] of formats) it(`${ct} → ${want}`, () => expect(responseFormat(ct)).toBe(want));

  const usage: [ApiKind, string, unknown][] = [
    [
      'openai.chat',
      '{"model":"m","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
      { inputTokens: 3, outputTokens: 2, totalTokens: 5 },
    ],
    [
      'openai.embeddings',
      '{"usage":{"prompt_tokens":4,"total_tokens":4}}',
      { inputTokens: 4, outputTokens: 0, totalTokens: 4 },
    ],
    [
      'ollama.chat',
      '{"done":true,"prompt_eval_count":7,"eval_count":1}',
      { inputTokens: 7, outputTokens: 1, totalTokens: 8 },
    ],
    ['ollama.chat', '{"done":true}', undefined],
    ['openai.chat', '{"model":"m"}', undefined],
    ['openai.chat', '{"usage":null}', undefined],
    ['openai.chat', 'not json', undefined],
  ];
  for (const [kind, body, want] of usage)
    it(`${kind} ${body}`, () => expect(usageFromJson(kind, Buffer.from(body)).usage).toEqual(want));
});
