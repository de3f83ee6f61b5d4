import { describe, expect, it } from 'vitest';
import {
  type ApiKind,
  bodyWithStreamUsage,
  classifyPath,
  DEFAULT_MAX_JSON_DEPTH,
  needsBody,
  type ParsedRequest,
  parseRequestBody,
  type RequestErrorCode,
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
    ['POST', '/generate', 'tgi.generate'],
    ['POST', '/generate_stream', 'tgi.generate_stream'],
    // TGI's compat routes dispatch on the body's stream flag: governed as tgi.generate, so a
    // rule on it cannot be skipped through them, in any spelling.
    ['POST', '/', 'tgi.generate'],
    ['POST', '/?stream=1', 'tgi.generate'],
    ['POST', '//', 'tgi.generate'],
    ['POST', '/invocations', 'tgi.generate'],
    ['POST', '/Generate_Stream', 'tgi.generate_stream'],
    ['GET', '/generate', 'unknown'],
    ['POST', '/info', 'unknown'],
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
    ['tgi.generate', true],
    ['tgi.generate_stream', true],
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
  const codeOf = (message: string): RequestErrorCode =>
    message.startsWith('The request body is empty')
      ? 'empty_body'
      : message.startsWith('We could not parse')
        ? 'invalid_json'
        : 'invalid_request';
  table.push(
    ['tgi without inputs', 'tgi.generate', '{"parameters":{}}', "Missing required parameter: 'inputs'.", 'inputs'],
    ['tgi inputs null', 'tgi.generate_stream', '{"inputs":null}', "Missing required parameter: 'inputs'.", 'inputs'],
    [
      'tgi inputs not a string',
      'tgi.generate',
      '{"inputs":["a"]}',
      "Invalid type for 'inputs': expected a string, but got an array instead.",
      'inputs',
    ],
    [
      'tgi parameters not an object',
      'tgi.generate',
      '{"inputs":"a","parameters":[]}',
      "Invalid type for 'parameters': expected an object, but got an array instead.",
      'parameters',
    ],
    [
      'tgi compat stream not a boolean',
      'tgi.generate',
      '{"inputs":"a","stream":"yes"}',
      "Invalid type for 'stream': expected a boolean, but got a string instead.",
      'stream',
    ],
  );
  for (const [name, kind, body, message, param] of table) {
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.isBuffer(body) ? body : Buffer.from(body));
      expect(r).toEqual({ ok: false, code: codeOf(message), message, param });
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
  const table: [string, ApiKind, string, Pick<ParsedRequest, 'model' | 'stream' | 'clientWantsUsage'>][] = [
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
    // TGI names no model; a `model` member is TGI's to ignore, never the gate's to trust.
    ['tgi generate', 'tgi.generate', '{"inputs":"x"}', { model: undefined, stream: false, clientWantsUsage: true }],
    [
      'tgi generate with a model member',
      'tgi.generate',
      '{"inputs":"x","model":"gpt-4o"}',
      { model: undefined, stream: false, clientWantsUsage: true },
    ],
    [
      'tgi compat route streamed',
      'tgi.generate',
      '{"inputs":"x","stream":true}',
      { model: undefined, stream: true, clientWantsUsage: true },
    ],
    [
      'tgi generate_stream streams whatever the body says',
      'tgi.generate_stream',
      '{"inputs":"x","stream":false}',
      { model: undefined, stream: true, clientWantsUsage: true },
    ],
  ];
  for (const [name, kind, body, want] of table) {
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      if (!r.ok) throw new Error(`rejected: ${r.message}`);
      expect(r.request).toMatchObject({ kind, ...want, bomLength: body.startsWith(BOM) ? 3 : 0 });
      // Plain data: it comes back from a worker thread.
      expect(structuredClone(r)).toEqual(r);
    });
  }
});

describe('parseRequestBody: output-token limit (policy input request.max_tokens)', () => {
  const table: [string, ApiKind, string, number | undefined | string][] = [
    ['absent', 'openai.chat', '{"model":"m","messages":[]}', undefined],
    ['max_tokens', 'openai.chat', '{"model":"m","messages":[],"max_tokens":256}', 256],
    ['null is absent', 'openai.chat', '{"model":"m","messages":[],"max_tokens":null}', undefined],
    ['max_completion_tokens', 'openai.chat', '{"model":"m","messages":[],"max_completion_tokens":64}', 64],
    [
      'both: the larger, whichever a server reads',
      'openai.chat',
      '{"model":"m","messages":[],"max_tokens":10,"max_completion_tokens":9000}',
      9000,
    ],
    ['exponent spelling of an integer', 'openai.completions', '{"model":"m","prompt":"p","max_tokens":1e3}', 1000],
    [
      'a string a lax server would coerce is refused',
      'openai.chat',
      '{"model":"m","messages":[],"max_tokens":"100000"}',
      "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
    ],
    [
      'a fraction is refused',
      'openai.chat',
      '{"model":"m","messages":[],"max_completion_tokens":1.5}',
      "Invalid type for 'max_completion_tokens': expected an integer, but got a number instead.",
    ],
    ['ollama options.num_predict', 'ollama.chat', '{"model":"l","messages":[],"options":{"num_predict":128}}', 128],
    ['ollama unlimited', 'ollama.generate', '{"model":"l","options":{"num_predict":-1}}', -1],
    ['ollama ignores a top-level max_tokens', 'ollama.generate', '{"model":"l","max_tokens":"x"}', undefined],
    [
      'ollama nested num_predict is not the option',
      'ollama.generate',
      '{"model":"l","options":{"x":{"num_predict":5}}}',
      undefined,
    ],
    [
      'ollama num_predict as a string is refused',
      'ollama.generate',
      '{"model":"l","options":{"num_predict":"5"}}',
      "Invalid type for 'options.num_predict': expected an integer, but got a string instead.",
    ],
    [
      'ollama options not an object',
      'ollama.chat',
      '{"model":"l","messages":[],"options":3}',
      "Invalid type for 'options': expected an object, but got a number instead.",
    ],
    ['tgi parameters.max_new_tokens', 'tgi.generate', '{"inputs":"x","parameters":{"max_new_tokens":20}}', 20],
    ['tgi parameters null', 'tgi.generate_stream', '{"inputs":"x","parameters":null}', undefined],
    ['tgi ignores a top-level max_tokens', 'tgi.generate', '{"inputs":"x","max_tokens":"x"}', undefined],
    [
      'tgi max_new_tokens as a string is refused',
      'tgi.generate',
      '{"inputs":"x","parameters":{"max_new_tokens":"20"}}',
      "Invalid type for 'parameters.max_new_tokens': expected an integer, but got a string instead.",
    ],
  ];
  for (const [name, kind, body, want] of table) {
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      if (typeof want === 'string') expect(r).toMatchObject({ ok: false, code: 'invalid_request', message: want });
      else expect(r).toMatchObject({ ok: true, request: { maxTokens: want } });
    });
  }
});

describe('parseRequestBody: how many completions one request asks for (generations)', () => {
  const table: [string, ApiKind, string, number | string][] = [
    ['absent', 'openai.chat', '{"model":"m","messages":[]}', 1],
    ['n', 'openai.chat', '{"model":"m","messages":[],"n":4}', 4],
    ['null n', 'openai.chat', '{"model":"m","messages":[],"n":null}', 1],
    ['best_of above n', 'openai.completions', '{"model":"m","prompt":"x","n":2,"best_of":5}', 5],
    ['TGI best_of', 'tgi.generate', '{"inputs":"x","parameters":{"best_of":3}}', 3],
    ['Ollama has none', 'ollama.generate', '{"model":"l","n":9}', 1],
    [
      'a string a lax server would coerce is refused',
      'openai.chat',
      '{"model":"m","messages":[],"n":"8"}',
      "Invalid type for 'n': expected an integer, but got a string instead.",
    ],
  ];
  for (const [name, kind, body, want] of table)
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      if (typeof want === 'string') expect(r.ok ? undefined : r.message).toBe(want);
      else expect(r.ok && r.request.generations).toBe(want);
    });
});

describe('parseRequestBody: model input as token ids or embeddings (tokenInput)', () => {
  const table: [string, ApiKind, string, string | undefined][] = [
    ['a text prompt', 'openai.completions', '{"model":"m","prompt":"say 123"}', undefined],
    ['text prompts', 'openai.completions', '{"model":"m","prompt":["a \\" [1", "-2"]}', undefined],
    ['token ids', 'openai.completions', '{"model":"m","prompt":[9906, 1917]}', 'prompt'],
    ['a text ending in a backslash', 'openai.completions', '{"model":"m","prompt":["a\\\\", "b"]}', undefined],
    [
      'token ids after a text ending in a backslash',
      'openai.completions',
      '{"model":"m","prompt":["a\\\\", 7]}',
      'prompt',
    ],
    ['lists of token ids', 'openai.completions', '{"model":"m","prompt":[[9906],[1917]]}', 'prompt'],
    ['texts mixed with token ids', 'openai.completions', '{"model":"m","prompt":["hi", [ -1 ]]}', 'prompt'],
    [
      'prompt embeddings beside a prompt',
      'openai.completions',
      '{"model":"m","prompt":"","prompt_embeds":"AAAA"}',
      'prompt_embeds',
    ],
    ['null prompt embeddings', 'openai.completions', '{"model":"m","prompt":"x","prompt_embeds":null}', undefined],
    ['embeddings of text', 'openai.embeddings', '{"model":"m","input":["a","b"]}', undefined],
    ['embeddings of token ids', 'openai.embeddings', '{"model":"m","input":[[1,2],[3]]}', 'input'],
    ['Ollama context', 'ollama.generate', '{"model":"l","prompt":"go on","context":[1,2,3]}', 'context'],
    ['Ollama empty context', 'ollama.generate', '{"model":"l","prompt":"x","context":[ ]}', undefined],
    ['Ollama context of another type', 'ollama.generate', '{"model":"l","prompt":"x","context":"1,2"}', 'context'],
    [
      'a chat body member named context means nothing',
      'openai.chat',
      '{"model":"m","messages":[],"context":[1]}',
      undefined,
    ],
  ];
  for (const [name, kind, body, want] of table)
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.from(body));
      expect(r.ok && r.request.tokenInput).toBe(r.ok ? want : false);
      expect(r.ok).toBe(true);
    });
});

describe('parseRequestBody: strict JSON', () => {
  const table: [string, ApiKind, string | Buffer, RequestErrorCode, string, string | null][] = [
    [
      'case-variant model',
      'openai.chat',
      '{"model":"allowed","MODEL":"forbidden","messages":[]}',
      'ambiguous_key',
      "The JSON body of your request has keys in one object that differ only in letter case (at 'MODEL'); servers read such keys differently.",
      'MODEL',
    ],
    [
      'duplicate model',
      'openai.chat',
      '{"model":"a","model":"b","messages":[]}',
      'duplicate_key',
      "The JSON body of your request repeats a key in one object (at 'model'); each key may appear only once.",
      'model',
    ],
    [
      'escaped duplicate model',
      'ollama.chat',
      '{"model":"a","\\u006dodel":"b","messages":[]}',
      'duplicate_key',
      "The JSON body of your request repeats a key in one object (at 'model'); each key may appear only once.",
      'model',
    ],
    [
      'nested duplicate in messages',
      'openai.chat',
      '{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"a","content":"b"}]}',
      'duplicate_key',
      "The JSON body of your request repeats a key in one object (at 'messages[1].content'); each key may appear only once.",
      'messages[1].content',
    ],
    [
      'long s stream',
      'ollama.generate',
      '{"model":"m","stream":false,"ſtream":true}',
      'ambiguous_key',
      `The JSON body of your request has keys in one object that differ only in letter case (at '["ſtream"]'); servers read such keys differently.`,
      '["ſtream"]',
    ],
    [
      'Kelvin sign',
      'openai.chat',
      '{"model":"m","messages":[],"Keep_alive":1,"keep_alive":2}',
      'ambiguous_key',
      "The JSON body of your request has keys in one object that differ only in letter case (at 'keep_alive'); servers read such keys differently.",
      'keep_alive',
    ],
    [
      'too deep',
      'openai.chat',
      `{"model":"m","messages":[${'['.repeat(DEFAULT_MAX_JSON_DEPTH)}${']'.repeat(DEFAULT_MAX_JSON_DEPTH)}]}`,
      'json_too_deep',
      `We could not parse the JSON body of your request: it nests arrays and objects more than ${DEFAULT_MAX_JSON_DEPTH} levels deep (at '${'messages'}${'[0]'.repeat(DEFAULT_MAX_JSON_DEPTH - 1)}').`,
      `messages${'[0]'.repeat(DEFAULT_MAX_JSON_DEPTH - 1)}`,
    ],
    [
      'invalid UTF-8',
      'openai.chat',
      Buffer.concat([
        Buffer.from('{"model":"m","messages":[{"content":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}]}'),
      ]),
      'invalid_utf8',
      "The request body is not valid UTF-8 (at 'messages[0].content').",
      'messages[0].content',
    ],
    [
      'unpaired surrogate key',
      'openai.chat',
      '{"model":"m","messages":[],"\\udfff":1}',
      'invalid_utf8',
      'The request body is not valid UTF-8 (at the top level).',
      null,
    ],
  ];
  for (const [name, kind, body, code, message, param] of table) {
    it(name, () => {
      const r = parseRequestBody(kind, Buffer.isBuffer(body) ? body : Buffer.from(body));
      expect(r).toEqual({ ok: false, code, message, param });
    });
  }

  it('accepts nesting at the limit, refuses one more, and honours a custom limit', () => {
    const body = (levels: number) =>
      Buffer.from(`{"model":"m","messages":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`);
    expect(parseRequestBody('openai.chat', body(DEFAULT_MAX_JSON_DEPTH)).ok).toBe(true);
    expect(parseRequestBody('openai.chat', body(DEFAULT_MAX_JSON_DEPTH + 1))).toMatchObject({ code: 'json_too_deep' });
    expect(parseRequestBody('openai.chat', body(4), { maxDepth: 4 }).ok).toBe(true);
    expect(parseRequestBody('openai.chat', body(5), { maxDepth: 4 })).toMatchObject({ code: 'json_too_deep' });
  });

  it('refuses a body nested 20,000 deep without throwing', () => {
    const deep = `{"model":"m","messages":[],"stream":true,"stream_options":{},"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    expect(() => parseRequestBody('openai.chat', Buffer.from(deep))).not.toThrow();
    expect(parseRequestBody('openai.chat', Buffer.from(deep))).toMatchObject({ ok: false, code: 'json_too_deep' });
  });

  it('reads model and stream from escaped spellings', () => {
    const r = parseRequestBody(
      'openai.chat',
      Buffer.from('{"\\u006dodel":"ll\\u0061ma\\/3 \\ud83d\\ude00","messages":[],"stre\\u0061m":true}'),
    );
    expect(r).toMatchObject({ ok: true, request: { model: 'llama/3 😀', stream: true, clientWantsUsage: false } });
  });
});

describe('bodyWithStreamUsage', () => {
  const parsed = (kind: ApiKind, body: string | Buffer): ParsedRequest => {
    const r = parseRequestBody(kind, Buffer.isBuffer(body) ? body : Buffer.from(body));
    if (!r.ok) throw new Error(r.message);
    return r.request;
  };
  const splice = (kind: ApiKind, body: string): string | undefined =>
    bodyWithStreamUsage(parsed(kind, body), Buffer.from(body))?.toString();

  const table: [string, string, string][] = [
    [
      'no stream_options: inserted first',
      '{"model":"m","seed":12345678901234567890,"messages":[],"stream":true}',
      '{"stream_options":{"include_usage":true},"model":"m","seed":12345678901234567890,"messages":[],"stream":true}',
    ],
    [
      'stream_options null: replaced',
      '{"model":"m","messages":[],"stream":true,"stream_options": null ,"seed":12345678901234567890}',
      '{"model":"m","messages":[],"stream":true,"stream_options": {"include_usage":true} ,"seed":12345678901234567890}',
    ],
    [
      'stream_options empty',
      '{"model":"m","messages":[],"stream":true,"stream_options":{ \n }}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true \n }}',
    ],
    [
      'stream_options with other members',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"x":{"y":[1]}}}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true,"x":{"y":[1]}}}',
    ],
    [
      'include_usage false: value replaced',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"a":1, "include_usage" : false ,"b":2}}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"a":1, "include_usage" : true ,"b":2}}',
    ],
    [
      'include_usage null',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":null}}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}',
    ],
    [
      'include_usage "true"',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":"true"}}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}',
    ],
    [
      'include_usage an object',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":{"a":[true]}}}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}',
    ],
    [
      'include_usage escaped',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include\\u005fusage":0}}',
      '{"model":"m","messages":[],"stream":true,"stream_options":{"include\\u005fusage":true}}',
    ],
    [
      'completions, whitespace kept',
      ' \n{ "model":"m", "prompt":"p", "t": 1.0, "stream":true }\t',
      ' \n{"stream_options":{"include_usage":true}, "model":"m", "prompt":"p", "t": 1.0, "stream":true }\t',
    ],
  ];
  for (const [name, body, want] of table) {
    it(`splices: ${name}`, () => {
      const kind: ApiKind = body.includes('"prompt"') ? 'openai.completions' : 'openai.chat';
      const out = splice(kind, body);
      expect(out).toBe(want);
      const json = JSON.parse(out!);
      expect(json.stream_options.include_usage).toBe(true);
      expect(out!.includes('12345678901234567890')).toBe(body.includes('12345678901234567890'));
      // The result is itself a body the gate accepts, now asking for usage.
      expect(parsed(kind, out!)).toMatchObject({ stream: true, clientWantsUsage: true });
    });
  }

  it('offsets are relative to the body without its BOM, which it returns without', () => {
    const raw = Buffer.from('\uFEFF{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false}}');
    const req = parsed('openai.chat', raw);
    expect(req.bomLength).toBe(3);
    const canonical = raw.subarray(3);
    expect(canonical.toString('utf8', req.streamOptions!.start, req.streamOptions!.end)).toBe(
      '{"include_usage":false}',
    );
    const want = '{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}';
    expect(bodyWithStreamUsage(req, canonical)!.toString()).toBe(want);
    // Given the body with its BOM still on, the same result.
    expect(bodyWithStreamUsage(req, raw)!.toString()).toBe(want);
  });

  it('splices a deep body without re-serialising it', () => {
    const body = `{"model":"m","messages":[${'['.repeat(60)}${']'.repeat(60)}],"stream":true}`;
    expect(JSON.parse(splice('openai.chat', body)!).stream_options).toEqual({ include_usage: true });
  });

  it('refuses a body that is not the one parsed', () => {
    const req = parsed('openai.chat', '{"model":"m","messages":[],"stream":true}');
    expect(() => bodyWithStreamUsage(req, Buffer.from(' {"model":"m","messages":[],"stream":true}'))).toThrow();
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
      expect(bodyWithStreamUsage(parsed(kind, body), Buffer.from(body))).toBeUndefined();
    });
  }
});
