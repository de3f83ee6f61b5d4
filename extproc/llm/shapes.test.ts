import { describe, expect, it } from 'vitest';
import {
  type ApiKind,
  bodyWithStreamUsage,
  classifyPath,
  needsBody,
  type ParsedRequest,
  parseRequestBody,
} from './shapes.ts';

describe('classifyPath', () => {
  const table: [string, string, ApiKind][] = [
    ['POST', '/v1/chat/completions', 'openai.chat'],
    ['POST', '/v1/chat/completions/', 'openai.chat'],
    ['POST', '/v1/chat/completions?x=1', 'openai.chat'],
    ['POST', '/v1/chat/completions/?x=/a', 'openai.chat'],
    ['POST', '/v1/completions', 'openai.completions'],
    ['POST', '/v1/embeddings', 'openai.embeddings'],
    ['GET', '/v1/models', 'openai.models'],
    ['GET', '/v1/models/', 'openai.models'],
    ['GET', '/v1/models/llama3', 'openai.models'],
    ['GET', '/v1/models/meta-llama/Llama-3.1-8B-Instruct', 'openai.models'],
    ['HEAD', '/v1/models', 'openai.models'],
    ['POST', '/api/chat', 'ollama.chat'],
    ['POST', '/api/generate', 'ollama.generate'],
    ['POST', '/api/embed', 'ollama.embed'],
    ['POST', '/api/embeddings', 'ollama.embed'],
    ['GET', '/api/tags', 'ollama.tags'],
    ['GET', '/api/tags?x', 'ollama.tags'],
    // OpenAI only under /v1.
    ['POST', '/chat/completions', 'unknown'],
    ['POST', '/completions', 'unknown'],
    ['POST', '/embeddings', 'unknown'],
    ['GET', '/models', 'unknown'],
    // Wrong method.
    ['GET', '/v1/chat/completions', 'unknown'],
    ['POST', '/v1/models', 'unknown'],
    ['GET', '/api/chat', 'unknown'],
    ['POST', '/api/tags', 'unknown'],
    ['DELETE', '/api/delete', 'unknown'],
    ['POST', '/api/pull', 'unknown'],
    ['GET', '/', 'unknown'],
    ['GET', '', 'unknown'],
    ['POST', '/v1/chat/completionsx', 'unknown'],
    ['POST', '/v1/chat', 'unknown'],
    ['POST', '/v2/chat/completions', 'unknown'],
    // Spellings a server may still route to the endpoint: governed as that endpoint.
    ['POST', '/v1//chat/completions', 'openai.chat'],
    ['POST', '//v1/chat/completions', 'openai.chat'],
    ['POST', '/v1/chat%2Fcompletions', 'openai.chat'],
    ['POST', '/v1/%63hat/completions', 'openai.chat'],
    ['POST', '/v1/./chat/completions', 'openai.chat'],
    ['POST', '/v1/x/../chat/completions', 'openai.chat'],
    ['POST', '/V1/Chat/Completions', 'openai.chat'],
    ['POST', '/api\\chat', 'ollama.chat'],
    ['POST', '/v1/chat/completions%', 'unknown'],
  ];
  for (const [method, path, want] of table) {
    it(`${method} ${JSON.stringify(path)} → ${want}`, () => expect(classifyPath(method, path)).toBe(want));
  }
});

describe('needsBody', () => {
  const table: [ApiKind, boolean][] = [
    ['openai.chat', true],
    ['openai.completions', true],
    ['openai.embeddings', true],
    ['openai.models', false],
    ['ollama.chat', true],
    ['ollama.generate', true],
    ['ollama.embed', true],
    ['ollama.tags', false],
    ['unknown', false],
  ];
  for (const [kind, want] of table) it(kind, () => expect(needsBody(kind)).toBe(want));
});

const chat = (extra: Record<string, unknown> = {}): string => JSON.stringify({ model: 'm', messages: [], ...extra });

describe('parseRequestBody errors', () => {
  const table: [string, ApiKind, string | Buffer, string, string | null][] = [
    ['empty body', 'openai.chat', '', 'The request body is empty; expected a JSON object.', null],
    ['whitespace only', 'openai.chat', ' \r\n\t', 'The request body is empty; expected a JSON object.', null],
    [
      'BOM only',
      'openai.chat',
      Buffer.from([0xef, 0xbb, 0xbf]),
      'The request body is empty; expected a JSON object.',
      null,
    ],
    [
      'invalid JSON',
      'openai.chat',
      '{"model": "secret-stuff",',
      'We could not parse the JSON body of your request: it is not valid JSON.',
      null,
    ],
    [
      'not JSON at all',
      'ollama.chat',
      'hello',
      'We could not parse the JSON body of your request: it is not valid JSON.',
      null,
    ],
    ['array', 'openai.chat', '[1]', 'The request body must be a JSON object, but got an array.', null],
    ['string', 'openai.chat', '"x"', 'The request body must be a JSON object, but got a string.', null],
    ['null', 'openai.embeddings', 'null', 'The request body must be a JSON object, but got null.', null],
    ['missing model (chat)', 'openai.chat', '{"messages":[]}', "Missing required parameter: 'model'.", 'model'],
    [
      'missing model (completions)',
      'openai.completions',
      '{"prompt":"x"}',
      "Missing required parameter: 'model'.",
      'model',
    ],
    [
      'missing model (embeddings)',
      'openai.embeddings',
      '{"input":"x"}',
      "Missing required parameter: 'model'.",
      'model',
    ],
    ['missing model (ollama chat)', 'ollama.chat', '{"messages":[]}', "Missing required parameter: 'model'.", 'model'],
    ['missing model (ollama generate)', 'ollama.generate', '{}', "Missing required parameter: 'model'.", 'model'],
    ['missing model (ollama embed)', 'ollama.embed', '{"input":"x"}', "Missing required parameter: 'model'.", 'model'],
    [
      'numeric model',
      'openai.chat',
      '{"model":4,"messages":[]}',
      "Invalid type for 'model': expected a string, but got a number instead.",
      'model',
    ],
    [
      'null model',
      'openai.chat',
      '{"model":null,"messages":[]}',
      "Invalid type for 'model': expected a string, but got null instead.",
      'model',
    ],
    [
      'empty model',
      'openai.chat',
      '{"model":"","messages":[]}',
      "Invalid value for 'model': it must not be empty.",
      'model',
    ],
    ['chat without messages', 'openai.chat', '{"model":"m"}', "Missing required parameter: 'messages'.", 'messages'],
    [
      'chat with messages object',
      'openai.chat',
      '{"model":"m","messages":{}}',
      "Invalid type for 'messages': expected an array, but got an object instead.",
      'messages',
    ],
    [
      'ollama chat without messages',
      'ollama.chat',
      '{"model":"m"}',
      "Missing required parameter: 'messages'.",
      'messages',
    ],
    [
      'ollama chat with messages string',
      'ollama.chat',
      '{"model":"m","messages":"hi"}',
      "Invalid type for 'messages': expected an array, but got a string instead.",
      'messages',
    ],
    [
      'completions without prompt',
      'openai.completions',
      '{"model":"m"}',
      "Missing required parameter: 'prompt'.",
      'prompt',
    ],
    ['embeddings without input', 'openai.embeddings', '{"model":"m"}', "Missing required parameter: 'input'.", 'input'],
    ['ollama embed without input', 'ollama.embed', '{"model":"m"}', "Missing required parameter: 'input'.", 'input'],
    [
      'stream string',
      'openai.chat',
      chat({ stream: 'yes' }),
      "Invalid type for 'stream': expected a boolean, but got a string instead.",
      'stream',
    ],
    [
      'stream number (completions)',
      'openai.completions',
      '{"model":"m","prompt":"p","stream":1}',
      "Invalid type for 'stream': expected a boolean, but got a number instead.",
      'stream',
    ],
    [
      'stream string (ollama)',
      'ollama.generate',
      '{"model":"m","stream":"false"}',
      "Invalid type for 'stream': expected a boolean, but got a string instead.",
      'stream',
    ],
    [
      'stream_options boolean',
      'openai.chat',
      chat({ stream: true, stream_options: true }),
      "Invalid type for 'stream_options': expected an object, but got a boolean instead.",
      'stream_options',
    ],
    [
      'stream_options array',
      'openai.completions',
      '{"model":"m","prompt":"p","stream_options":[]}',
      "Invalid type for 'stream_options': expected an object, but got an array instead.",
      'stream_options',
    ],
  ];
  for (const [name, kind, body, message, param] of table) {
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.isBuffer(body) ? body : Buffer.from(body));
      expect(r).toEqual({ ok: false, message, param });
    });
  }

  it('never echoes the body', () => {
    const r = parseRequestBody('openai.chat', Buffer.from('{"model":"s3cr3t-token'));
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('s3cr3t');
  });
});

describe('parseRequestBody accepts', () => {
  const BOM = '\uFEFF';
  const table: [string, ApiKind, string, Omit<ParsedRequest, 'body' | 'kind'>][] = [
    ['chat, not streamed', 'openai.chat', chat(), { model: 'm', stream: false, clientWantsUsage: true }],
    [
      'chat, stream false',
      'openai.chat',
      chat({ stream: false }),
      { model: 'm', stream: false, clientWantsUsage: true },
    ],
    [
      'chat, stream null (OpenAI: absent)',
      'openai.chat',
      chat({ stream: null }),
      { model: 'm', stream: false, clientWantsUsage: true },
    ],
    [
      'chat streamed, no usage asked',
      'openai.chat',
      chat({ stream: true }),
      { model: 'm', stream: true, clientWantsUsage: false },
    ],
    [
      'chat streamed, stream_options null',
      'openai.chat',
      chat({ stream: true, stream_options: null }),
      { model: 'm', stream: true, clientWantsUsage: false },
    ],
    [
      'chat streamed, include_usage false',
      'openai.chat',
      chat({ stream: true, stream_options: { include_usage: false } }),
      { model: 'm', stream: true, clientWantsUsage: false },
    ],
    [
      'chat streamed, include_usage "true"',
      'openai.chat',
      chat({ stream: true, stream_options: { include_usage: 'true' } }),
      { model: 'm', stream: true, clientWantsUsage: false },
    ],
    [
      'chat streamed with usage',
      'openai.chat',
      chat({ stream: true, stream_options: { include_usage: true } }),
      { model: 'm', stream: true, clientWantsUsage: true },
    ],
    ['with BOM', 'openai.chat', BOM + chat(), { model: 'm', stream: false, clientWantsUsage: true }],
    [
      'completions, prompt array',
      'openai.completions',
      '{"model":"m","prompt":["a"],"stream":true}',
      { model: 'm', stream: true, clientWantsUsage: false },
    ],
    [
      'embeddings (stream ignored)',
      'openai.embeddings',
      '{"model":"e","input":["a"],"stream":"x"}',
      { model: 'e', stream: false, clientWantsUsage: true },
    ],
    [
      'ollama chat streams by default',
      'ollama.chat',
      '{"model":"l","messages":[]}',
      { model: 'l', stream: true, clientWantsUsage: true },
    ],
    [
      'ollama chat stream false',
      'ollama.chat',
      '{"model":"l","messages":[],"stream":false}',
      { model: 'l', stream: false, clientWantsUsage: true },
    ],
    [
      'ollama generate without prompt (load)',
      'ollama.generate',
      '{"model":"l"}',
      { model: 'l', stream: true, clientWantsUsage: true },
    ],
    [
      'ollama generate, stream_options ignored',
      'ollama.generate',
      '{"model":"l","prompt":"p","stream_options":1}',
      { model: 'l', stream: true, clientWantsUsage: true },
    ],
    [
      'ollama embed input',
      'ollama.embed',
      '{"model":"l","input":"x"}',
      { model: 'l', stream: false, clientWantsUsage: true },
    ],
    [
      'ollama legacy embeddings prompt',
      'ollama.embed',
      '{"model":"l","prompt":"x"}',
      { model: 'l', stream: false, clientWantsUsage: true },
    ],
  ];
  for (const [name, kind, body, want] of table) {
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      if (!r.ok) throw new Error(`rejected: ${r.message}`);
      const { body: parsed, ...rest } = r.request;
      expect(rest).toEqual({ kind, ...want });
      expect(parsed).toEqual(JSON.parse(body.replace(BOM, '')));
    });
  }
});

describe('bodyWithStreamUsage', () => {
  const parsed = (kind: ApiKind, body: string): ParsedRequest => {
    const r = parseRequestBody(kind, Buffer.from(body));
    if (!r.ok) throw new Error(r.message);
    return r.request;
  };

  const injected: [string, ApiKind, string, Record<string, unknown>][] = [
    [
      'chat, no stream_options',
      'openai.chat',
      chat({ stream: true }),
      { model: 'm', messages: [], stream: true, stream_options: { include_usage: true } },
    ],
    [
      'chat, stream_options null',
      'openai.chat',
      chat({ stream: true, stream_options: null }),
      { model: 'm', messages: [], stream: true, stream_options: { include_usage: true } },
    ],
    [
      'chat, other stream_options keys kept',
      'openai.chat',
      chat({ stream: true, stream_options: { continuous_usage_stats: true, include_usage: false } }),
      { model: 'm', messages: [], stream: true, stream_options: { continuous_usage_stats: true, include_usage: true } },
    ],
    [
      'completions',
      'openai.completions',
      '{"model":"m","prompt":"p","stream":true}',
      { model: 'm', prompt: 'p', stream: true, stream_options: { include_usage: true } },
    ],
  ];
  for (const [name, kind, body, want] of injected) {
    it(`injects: ${name}`, () => {
      const out = bodyWithStreamUsage(parsed(kind, body));
      expect(out).toBeInstanceOf(Buffer);
      expect(JSON.parse(out!.toString())).toEqual(want);
    });
  }

  it('splices into the original bytes when given them, keeping big integers and spelling', () => {
    const raw = Buffer.from(
      '\uFEFF \n{ "model":"m", "seed": 12345678901234567890, "t": 1.0, "messages":[], "stream":true }',
    );
    const out = bodyWithStreamUsage(parsed('openai.chat', raw.toString()), raw);
    expect(out!.toString()).toBe(
      '\uFEFF \n{"stream_options":{"include_usage":true}, "model":"m", "seed": 12345678901234567890, "t": 1.0, "messages":[], "stream":true }',
    );
  });

  it('re-serialises (merging) when stream_options exists, even given the bytes', () => {
    const raw = Buffer.from(chat({ stream: true, stream_options: { x: 1 } }));
    const out = bodyWithStreamUsage(parsed('openai.chat', raw.toString()), raw);
    expect(out!.toString()).toBe(
      '{"model":"m","messages":[],"stream":true,"stream_options":{"x":1,"include_usage":true}}',
    );
  });

  const unchanged: [string, ApiKind, string][] = [
    ['not streamed', 'openai.chat', chat()],
    ['stream false', 'openai.chat', chat({ stream: false })],
    ['client asked for usage', 'openai.chat', chat({ stream: true, stream_options: { include_usage: true } })],
    [
      'completions client asked',
      'openai.completions',
      '{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}',
    ],
    ['embeddings', 'openai.embeddings', '{"model":"m","input":"x"}'],
    ['ollama chat (usage always in the stream)', 'ollama.chat', '{"model":"m","messages":[]}'],
    ['ollama generate', 'ollama.generate', '{"model":"m","prompt":"p"}'],
  ];
  for (const [name, kind, body] of unchanged) {
    it(`unchanged: ${name}`, () => {
      expect(bodyWithStreamUsage(parsed(kind, body))).toBeUndefined();
      expect(bodyWithStreamUsage(parsed(kind, body), Buffer.from(body))).toBeUndefined();
    });
  }
});
