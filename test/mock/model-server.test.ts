// The mock is the one faked part of the stack: its wire formats must be what real servers and
// the official SDK produce, or the e2e tests prove nothing. These tests pin exact bytes, counts
// and usage numbers.
import { createHook } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countText } from '../../extproc/metering/tokenizer.ts';
import {
  type MockModel,
  mockEmbedding,
  splitPoint,
  spread,
  startMockModel,
  TGI_MOCK_ENCODING,
} from './model-server.ts';

let mock: MockModel;
beforeAll(async () => {
  mock = await startMockModel({ chunks: 3 });
});
afterAll(() => mock.close());

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${mock.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** SSE text → the data payloads, checking the framing is exactly `data: ...\n\n`. */
function sseData(text: string): string[] {
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((e) => {
      expect(e.startsWith('data: ')).toBe(true);
      expect(e.includes('\n')).toBe(false);
      return e.slice('data: '.length);
    });
}

/** SSE → parsed chunks, asserting [DONE] comes last and only there. */
function sseChunks(text: string): any[] {
  const data = sseData(text);
  expect(data.at(-1)).toBe('[DONE]');
  expect(data.slice(0, -1)).not.toContain('[DONE]');
  return data.slice(0, -1).map((d) => JSON.parse(d));
}

function ndjson(text: string): any[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** The response body as the separate reads the client got, via node:http. */
function rawReads(path: string, body: unknown, headers: Record<string, string>): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      `${mock.url}${path}`,
      { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const reads: Buffer[] = [];
        res.on('data', (d: Buffer) => reads.push(d));
        res.on('end', () => resolve(reads));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const user = (content: unknown) => [{ role: 'user', content }];

describe('GET model lists', () => {
  it('/v1/models lists the mock models in OpenAI shape', async () => {
    const r = await fetch(`${mock.url}/v1/models`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({
      object: 'list',
      data: [
        { id: 'mock-small', object: 'model', created: 1_700_000_000, owned_by: 'lm-gate-mock' },
        { id: 'mock-large', object: 'model', created: 1_700_000_000, owned_by: 'lm-gate-mock' },
      ],
    });
  });

  it('/api/tags lists them in Ollama shape', async () => {
    const r = (await (await fetch(`${mock.url}/api/tags`)).json()) as any;
    expect(r.models.map((m: any) => [m.name, m.model])).toEqual([
      ['mock-small', 'mock-small'],
      ['mock-large', 'mock-large'],
    ]);
    for (const m of r.models) {
      expect(m).toMatchObject({
        modified_at: expect.any(String),
        size: expect.any(Number),
        details: { format: 'gguf' },
      });
      expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});

describe('OpenAI non-streamed', () => {
  const cases: [string, string, Record<string, unknown>, Record<string, unknown>][] = [
    [
      'chat',
      '/v1/chat/completions',
      { model: 'mock-large', messages: [{ role: 'system', content: 'be  brief' }, ...user('one two three')] },
      {
        object: 'chat.completion',
        model: 'mock-large',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'Hello from the' },
            finish_reason: 'stop',
            logprobs: null,
          },
        ],
      },
    ],
    [
      'completions',
      '/v1/completions',
      { model: 'mock-small', prompt: '  one two\nthree\tfour five ' },
      {
        object: 'text_completion',
        model: 'mock-small',
        choices: [{ index: 0, text: 'Hello from the', finish_reason: 'stop', logprobs: null }],
      },
    ],
  ];
  for (const [name, path, body, want] of cases) {
    it(`${name}: exact object, usage counted in words and chunks`, async () => {
      const r = await post(path, body);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json');
      const got = (await r.json()) as any;
      expect(got).toEqual({
        id: expect.stringMatching(name === 'chat' ? /^chatcmpl-/ : /^cmpl-/),
        created: expect.any(Number),
        ...want,
        usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
      });
      expect(Math.abs(got.created - Date.now() / 1000)).toBeLessThan(5);
    });
  }

  const usageModes: [string, boolean][] = [
    ['auto', true],
    ['always', true],
    ['never', false],
  ];
  for (const [mode, present] of usageModes) {
    it(`x-mock-usage: ${mode} → usage ${present ? 'present' : 'absent'}`, async () => {
      const got = (await (
        await post('/v1/chat/completions', { model: 'm', messages: user('a') }, { 'x-mock-usage': mode })
      ).json()) as any;
      expect('usage' in got).toBe(present);
      if (present) expect(got.usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
    });
  }

  it('counts words in content parts and token-id prompts; an empty prompt still costs 1', async () => {
    const parts = [
      { type: 'text', text: 'alpha beta' },
      { type: 'image_url', image_url: { url: 'data:x' } },
      { type: 'text', text: 'gamma' },
    ];
    const a = (await (await post('/v1/chat/completions', { model: 'm', messages: user(parts) })).json()) as any;
    expect(a.usage.prompt_tokens).toBe(3);
    const b = (await (await post('/v1/completions', { model: 'm', prompt: [1, 2, 3, 4] })).json()) as any;
    expect(b.usage.prompt_tokens).toBe(4);
    const c = (await (await post('/v1/chat/completions', { model: 'm', messages: [] })).json()) as any;
    expect(c.usage.prompt_tokens).toBe(1);
  });
});

describe('OpenAI streamed', () => {
  // [name, body extra, headers, usage chunk expected]
  const usageCases: [string, Record<string, unknown>, Record<string, string>, boolean][] = [
    ['auto without stream_options', {}, {}, false],
    ['auto with include_usage: false', { stream_options: { include_usage: false } }, {}, false],
    ['auto with include_usage: true', { stream_options: { include_usage: true } }, {}, true],
    ['always', {}, { 'x-mock-usage': 'always' }, true],
    ['never, even when asked', { stream_options: { include_usage: true } }, { 'x-mock-usage': 'never' }, false],
  ];

  for (const [name, extra, headers, wantUsage] of usageCases) {
    it(`chat, usage ${name}`, async () => {
      const r = await post(
        '/v1/chat/completions',
        { model: 'mock-small', stream: true, messages: user('a b c d'), ...extra },
        headers,
      );
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/event-stream');
      const chunks = sseChunks(await r.text());
      const usageTail = wantUsage ? { usage: null } : {};
      const id = chunks[0].id;
      expect(id).toMatch(/^chatcmpl-/);
      const base = { id, object: 'chat.completion.chunk', created: chunks[0].created, model: 'mock-small' };
      const choice = (delta: object, finish: string | null) => [
        { index: 0, delta, finish_reason: finish, logprobs: null },
      ];
      const want: object[] = [
        { ...base, choices: choice({ role: 'assistant', content: '' }, null), ...usageTail },
        { ...base, choices: choice({ content: 'Hello' }, null), ...usageTail },
        { ...base, choices: choice({ content: ' from' }, null), ...usageTail },
        { ...base, choices: choice({ content: ' the' }, 'stop'), ...usageTail },
      ];
      if (wantUsage)
        want.push({ ...base, choices: [], usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 } });
      expect(chunks).toEqual(want);
      // key order as OpenAI sends it, usage last
      expect(Object.keys(chunks[1])).toEqual([
        'id',
        'object',
        'created',
        'model',
        'choices',
        ...(wantUsage ? ['usage'] : []),
      ]);
    });

    it(`completions, usage ${name}`, async () => {
      const r = await post('/v1/completions', { model: 'mock-large', prompt: 'x y', stream: true, ...extra }, headers);
      expect(r.headers.get('content-type')).toBe('text/event-stream');
      const chunks = sseChunks(await r.text());
      const usageTail = wantUsage ? { usage: null } : {};
      const base = { id: chunks[0].id, object: 'text_completion', created: chunks[0].created, model: 'mock-large' };
      expect(base.id).toMatch(/^cmpl-/);
      const want: object[] = ['Hello', ' from', ' the'].map((text, i) => ({
        ...base,
        choices: [{ index: 0, text, finish_reason: i === 2 ? 'stop' : null, logprobs: null }],
        ...usageTail,
      }));
      if (wantUsage)
        want.push({ ...base, choices: [], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } });
      expect(chunks).toEqual(want);
    });
  }

  it('cycles the default words when there are more chunks than words', async () => {
    const r = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, stream_options: { include_usage: true }, messages: user('q') },
      { 'x-mock-chunks': '8' },
    );
    const chunks = sseChunks(await r.text());
    const deltas = chunks.slice(1, -1).map((c) => c.choices[0].delta.content);
    expect(deltas).toEqual(['Hello', ' from', ' the', ' mock', ' model', ' server! ', 'Hello', ' from']);
    expect(chunks.at(-1).usage).toEqual({ prompt_tokens: 1, completion_tokens: 8, total_tokens: 9 });
  });

  it('x-mock-timestamps: 1 stamps each content chunk with the wall-clock time it was written', async () => {
    const before = performance.timeOrigin + performance.now();
    const r = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, stream_options: { include_usage: true }, messages: user('q') },
      { 'x-mock-chunks': '3', 'x-mock-chunk-delay-ms': '20', 'x-mock-timestamps': '1' },
    );
    const chunks = sseChunks(await r.text());
    const after = performance.timeOrigin + performance.now();
    const stamps = chunks.map((c) => c.x_mock_sent_ms);
    // The role chunk and the usage chunk carry no content and no stamp.
    expect(stamps[0]).toBeUndefined();
    expect(stamps.at(-1)).toBeUndefined();
    const sent = stamps.slice(1, -1) as number[];
    expect(sent).toHaveLength(3);
    expect(sent[0]).toBeGreaterThanOrEqual(before);
    expect(sent[2]).toBeLessThanOrEqual(after);
    // Written when sent, not when the reply was planned: the chunk delay shows between stamps.
    expect(sent[2]! - sent[1]!).toBeGreaterThanOrEqual(15);
    // usage stays the last field, as upstream sends it
    expect(Object.keys(chunks[1]).slice(-2)).toEqual(['x_mock_sent_ms', 'usage']);
  });

  it('x-mock-chunks: 0 gives an empty reply whose finish reason comes in a chunk of its own', async () => {
    const r = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: user('q') },
      { 'x-mock-chunks': '0' },
    );
    const chunks = sseChunks(await r.text());
    expect(chunks.map((c) => [c.choices[0].delta, c.choices[0].finish_reason])).toEqual([
      [{ role: 'assistant', content: '' }, null],
      [{}, 'stop'],
    ]);
  });

  it('x-mock-reasoning streams reasoning_content deltas before the content, and sets it whole in an answer', async () => {
    const reasoning = encodeURIComponent(JSON.stringify(['think ', 'é']));
    const headers = { 'x-mock-reasoning': reasoning, 'x-mock-content': 'ok', 'x-mock-chunks': '1' };
    const r = await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('q') }, headers);
    expect(sseChunks(await r.text()).map((c) => c.choices[0].delta)).toEqual([
      { role: 'assistant', content: '' },
      { reasoning_content: 'think ' },
      { reasoning_content: 'é' },
      { content: 'ok' },
    ]);
    const whole = (await (
      await post('/v1/chat/completions', { model: 'm', messages: user('q') }, headers)
    ).json()) as any;
    expect(whole.choices[0].message).toEqual({ role: 'assistant', content: 'ok', reasoning_content: 'think é' });
  });

  it('x-mock-content is spread over the chunks by code point, percent-decoded', async () => {
    const content = 'añb€c😀d世e';
    const r = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: user('q') },
      { 'x-mock-content': encodeURIComponent(content), 'x-mock-chunks': '4' },
    );
    const deltas = sseChunks(await r.text())
      .slice(1)
      .map((c) => c.choices[0].delta.content);
    expect(deltas).toEqual(['añ', 'b€', 'c😀', 'd世e']);
    // plain ASCII passes as is, and a lone % that is not an escape too
    const whole = (await (
      await post('/v1/completions', { model: 'm', prompt: 'p' }, { 'x-mock-content': '100% sure' })
    ).json()) as any;
    expect(whole.choices[0].text).toBe('100% sure');
  });
});

describe('embeddings', () => {
  it('a string input, floats by default', async () => {
    const r = await post('/v1/embeddings', { model: 'mock-small', input: 'the quick fox' });
    expect(r.status).toBe(200);
    const got = (await r.json()) as any;
    expect(got).toEqual({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: mockEmbedding('the quick fox') }],
      model: 'mock-small',
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
    expect(got.data[0].embedding).toHaveLength(8);
    expect(new Set(got.data[0].embedding).size).toBeGreaterThan(1);
  });

  it('an array input, base64-encoded float32 on request', async () => {
    const got = (await (
      await post('/v1/embeddings', { model: 'm', input: ['one two', 'three'], encoding_format: 'base64' })
    ).json()) as any;
    expect(got.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    expect(got.data.map((d: any) => d.index)).toEqual([0, 1]);
    const decoded = got.data.map((d: any) =>
      Array.from(new Float32Array(new Uint8Array(Buffer.from(d.embedding, 'base64')).buffer)),
    );
    expect(decoded).toEqual([mockEmbedding('one two'), mockEmbedding('three')]);
    expect(mockEmbedding('one two')).not.toEqual(mockEmbedding('three'));
  });

  it('x-mock-usage: never leaves usage out', async () => {
    const got = (await (
      await post('/v1/embeddings', { model: 'm', input: 'x' }, { 'x-mock-usage': 'never' })
    ).json()) as any;
    expect(got.data).toHaveLength(1);
    expect('usage' in got).toBe(false);
  });

  it('x-mock-embedding-dims: N floats per embedding, the first eight as by default; base64 too', async () => {
    const got = (await (
      await post('/v1/embeddings', { model: 'm', input: ['a', 'b'] }, { 'x-mock-embedding-dims': '1000' })
    ).json()) as any;
    expect(got.data.map((d: any) => d.embedding.length)).toEqual([1000, 1000]);
    expect(got.data[0].embedding).toEqual(mockEmbedding('a', 1000));
    expect(got.data[0].embedding.slice(0, 8)).toEqual(mockEmbedding('a'));
    expect(new Set(got.data[0].embedding).size).toBeGreaterThan(100);
    const b64 = (await (
      await post(
        '/v1/embeddings',
        { model: 'm', input: 'a', encoding_format: 'base64' },
        { 'x-mock-embedding-dims': '1000' },
      )
    ).json()) as any;
    expect(Buffer.from(b64.data[0].embedding, 'base64').length).toBe(4000);
    // nonsense falls back to the default
    const dflt = (await (
      await post('/v1/embeddings', { model: 'm', input: 'a' }, { 'x-mock-embedding-dims': 'lots' })
    ).json()) as any;
    expect(dflt.data[0].embedding).toHaveLength(8);
  });

  it('a 20 MiB embeddings answer is reachable (4 inputs x 320,000 dims), with its content-length', async () => {
    const r = await post(
      '/v1/embeddings',
      { model: 'm', input: ['a', 'b', 'c', 'd'] },
      { 'x-mock-embedding-dims': '320000' },
    );
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(text.length).toBeGreaterThan(20 * 1024 * 1024);
    const got = JSON.parse(text);
    expect(got.data.map((d: any) => d.embedding.length)).toEqual([320000, 320000, 320000, 320000]);
  });
});

describe('Ollama', () => {
  const doneKeys = (chat: boolean, counts: boolean) => [
    'model',
    'created_at',
    ...(chat ? ['message', 'done_reason', 'done'] : ['response', 'done', 'done_reason']),
    'total_duration',
    'load_duration',
    ...(counts ? ['prompt_eval_count'] : []),
    'prompt_eval_duration',
    ...(counts ? ['eval_count'] : []),
    'eval_duration',
  ];

  const cases: [string, string, Record<string, unknown>, boolean][] = [
    ['chat', '/api/chat', { model: 'mock-small', messages: user('hi there') }, true],
    ['generate', '/api/generate', { model: 'mock-small', prompt: 'hi there' }, false],
  ];
  for (const [name, path, body, chat] of cases) {
    const piece = (l: any) => (chat ? l.message.content : l.response);

    it(`${name} streams NDJSON by default, counts on the done line`, async () => {
      const r = await post(path, body);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/x-ndjson');
      const lines = ndjson(await r.text());
      expect(lines).toHaveLength(4);
      for (const [i, l] of lines.slice(0, 3).entries()) {
        expect(Object.keys(l)).toEqual(['model', 'created_at', chat ? 'message' : 'response', 'done']);
        expect(l).toMatchObject({ model: 'mock-small', done: false });
        expect(piece(l)).toBe(['Hello', ' from', ' the'][i]);
        if (chat) expect(l.message.role).toBe('assistant');
        expect(new Date(l.created_at).toISOString()).toBe(l.created_at);
      }
      const done = lines[3];
      expect(Object.keys(done)).toEqual(doneKeys(chat, true));
      expect(done).toMatchObject({ done: true, done_reason: 'stop', prompt_eval_count: 2, eval_count: 3 });
      expect(piece(done)).toBe('');
      for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration'])
        expect(Number.isInteger(done[k]) && done[k] >= 0).toBe(true);
      expect(done.total_duration).toBeGreaterThanOrEqual(done.eval_duration);
    });

    it(`${name} with stream:false answers the done object with the whole content`, async () => {
      const r = await post(path, { ...body, stream: false });
      expect(r.headers.get('content-type')).toBe('application/json');
      const got = (await r.json()) as any;
      expect(Object.keys(got)).toEqual(doneKeys(chat, true));
      expect(piece(got)).toBe('Hello from the');
      expect(got).toMatchObject({
        model: 'mock-small',
        done: true,
        done_reason: 'stop',
        prompt_eval_count: 2,
        eval_count: 3,
      });
    });

    it(`${name} with x-mock-usage: never omits the token counts`, async () => {
      const lines = ndjson(await (await post(path, body, { 'x-mock-usage': 'never' })).text());
      expect(Object.keys(lines.at(-1))).toEqual(doneKeys(chat, false));
      const whole = (await (await post(path, { ...body, stream: false }, { 'x-mock-usage': 'never' })).json()) as any;
      expect(whole.prompt_eval_count).toBeUndefined();
      expect(whole.eval_count).toBeUndefined();
    });
  }
});

describe('errors', () => {
  const openAiError = (param: string | null) => ({
    error: { message: expect.any(String), type: 'invalid_request_error', code: null, param },
  });
  // [name, method, path, body, headers, status, body wanted]
  const cases: [string, string, string, unknown, Record<string, string>, number, unknown][] = [
    ['not JSON', 'POST', '/v1/chat/completions', '{"model":', {}, 400, openAiError(null)],
    ['a JSON array', 'POST', '/v1/chat/completions', [1], {}, 400, openAiError(null)],
    ['no body', 'POST', '/v1/chat/completions', undefined, {}, 400, openAiError(null)],
    ['no model', 'POST', '/v1/chat/completions', { messages: [] }, {}, 400, openAiError('model')],
    ['model not a string', 'POST', '/v1/chat/completions', { model: 1, messages: [] }, {}, 400, openAiError('model')],
    ['no messages', 'POST', '/v1/chat/completions', { model: 'm' }, {}, 400, openAiError('messages')],
    [
      'messages not an array',
      'POST',
      '/v1/chat/completions',
      { model: 'm', messages: 'hi' },
      {},
      400,
      openAiError('messages'),
    ],
    ['completion without prompt', 'POST', '/v1/completions', { model: 'm' }, {}, 400, openAiError('prompt')],
    [
      'stream_options without stream',
      'POST',
      '/v1/chat/completions',
      { model: 'm', messages: [], stream_options: { include_usage: true } },
      {},
      400,
      openAiError('stream_options'),
    ],
    ['embeddings without input', 'POST', '/v1/embeddings', { model: 'm' }, {}, 400, openAiError('input')],
    [
      'embeddings with a bad encoding',
      'POST',
      '/v1/embeddings',
      { model: 'm', input: 'x', encoding_format: 'hex' },
      {},
      400,
      openAiError('encoding_format'),
    ],
    ['Ollama without model', 'POST', '/api/chat', { messages: [] }, {}, 400, { error: 'model is required' }],
    ['Ollama not JSON', 'POST', '/api/generate', 'nope', {}, 400, { error: expect.any(String) }],
    [
      'unknown path',
      'POST',
      '/v1/nope',
      { model: 'm' },
      {},
      404,
      {
        error: {
          message: 'Unknown request URL: POST /v1/nope.',
          type: 'invalid_request_error',
          code: 'unknown_url',
          param: null,
        },
      },
    ],
    [
      'GET on a POST route',
      'GET',
      '/v1/chat/completions',
      undefined,
      {},
      404,
      { error: expect.objectContaining({ code: 'unknown_url' }) },
    ],
  ];
  const mockError = { error: { message: 'mock error', type: 'server_error', code: null, param: null } };
  for (const [path, status] of [
    ['/v1/chat/completions', '503'],
    ['/api/chat', '429'],
    ['/v1/models', '500'],
    ['/v1/nope', '502'],
  ] as const)
    cases.push([
      `x-mock-status ${status} on ${path}`,
      path === '/v1/models' ? 'GET' : 'POST',
      path,
      path === '/v1/models' ? undefined : { model: 'm', messages: [] },
      { 'x-mock-status': status },
      Number(status),
      mockError,
    ]);

  for (const [name, method, path, body, headers, status, want] of cases) {
    it(`${name} → ${status}`, async () => {
      const r = await fetch(`${mock.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      expect(r.status).toBe(status);
      expect(r.headers.get('content-type')).toBe('application/json');
      expect(await r.json()).toEqual(want);
    });
  }

  it('the exact x-mock-status body', async () => {
    const r = await post('/v1/chat/completions', { model: 'm', messages: [] }, { 'x-mock-status': '500' });
    expect(await r.text()).toBe('{"error":{"message":"mock error","type":"server_error","code":null,"param":null}}');
  });

  it('an x-mock-status that is not 4xx/5xx is ignored', async () => {
    const r = await post('/v1/chat/completions', { model: 'm', messages: [] }, { 'x-mock-status': 'abc' });
    expect(r.status).toBe(200);
  });
});

describe('x-mock-split', () => {
  const normalise = (s: string) =>
    s
      .replace(/"created(_at)?":("[^"]*"|\d+)/g, '"created":0')
      .replace(/(chat)?cmpl-mock\d+/g, 'ID')
      .replace(/"(total|load|prompt_eval|eval)_duration":\d+/g, '"$1_duration":0');

  const cases: [string, string, Record<string, unknown>, string][] = [
    [
      'SSE chat, multi-byte content',
      '/v1/chat/completions',
      { model: 'm', stream: true, stream_options: { include_usage: true }, messages: user('x') },
      'é€😀世',
    ],
    ['SSE completions, ASCII content', '/v1/completions', { model: 'm', stream: true, prompt: 'x' }, ''],
    ['NDJSON chat, multi-byte content', '/api/chat', { model: 'm', messages: user('x') }, 'añb€c😀d世e'],
    ['NDJSON generate, ASCII content', '/api/generate', { model: 'm', prompt: 'x' }, ''],
  ];
  for (const [name, path, body, content] of cases) {
    it(`${name}: two writes per event, the same decoded stream`, async () => {
      const headers: Record<string, string> = content ? { 'x-mock-content': encodeURIComponent(content) } : {};
      const plain = Buffer.concat(await rawReads(path, body, headers)).toString('utf8');
      const reads = await rawReads(path, body, { ...headers, 'x-mock-split': '1' });
      const split = Buffer.concat(reads).toString('utf8');
      expect(normalise(split)).toBe(normalise(plain));
      const events = path.startsWith('/v1') ? sseData(split).length : ndjson(split).length;
      // every event arrived in (at least) two reads
      expect(reads.length).toBeGreaterThanOrEqual(2 * events);
      if (content) {
        // and some reads end inside a character: a strict decoder rejects them on their own
        const strict = new TextDecoder('utf-8', { fatal: true });
        const broken = reads.filter((r) => {
          try {
            strict.decode(r);
            return false;
          } catch {
            return true;
          }
        });
        expect(broken.length).toBeGreaterThanOrEqual(4);
      }
    });
  }

  it('splitPoint cuts right after a lead byte near the middle, else in the middle', () => {
    const buf = Buffer.from('ab€cdefgh');
    const at = splitPoint(buf);
    expect(buf[at - 1]).toBe(0xe2);
    expect(splitPoint(Buffer.from('abcdef'))).toBe(3);
    expect(spread('abcdefg', 3)).toEqual(['ab', 'cd', 'efg']);
    expect(spread('ab', 4)).toEqual(['', 'a', '', 'b']);
  });
});

/** A whole response through node:http: status, headers, body, trailers, and the separate reads. */
function fullResponse(
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ res: IncomingMessage; body: string; reads: Buffer[]; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${mock.url}${path}`,
      { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const reads: Buffer[] = [];
        res.on('data', (d: Buffer) => reads.push(d));
        res.on('end', () => resolve({ res, body: Buffer.concat(reads).toString(), reads, trailers: res.trailers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('x-mock-trailers', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['JSON chat', '/v1/chat/completions', { model: 'm', messages: user('x') }],
    ['SSE chat', '/v1/chat/completions', { model: 'm', stream: true, messages: user('x') }],
    ['NDJSON chat', '/api/chat', { model: 'm', messages: user('x') }],
    ['embeddings', '/v1/embeddings', { model: 'm', input: 'x' }],
  ];
  for (const [name, path, body] of cases) {
    it(`${name}: chunked, Trailer declared, ends with x-mock-done: 1; the same body as without`, async () => {
      const plain = await fullResponse(path, body, {});
      expect(plain.res.headers.trailer).toBeUndefined();
      expect(plain.trailers).toEqual({});
      const t = await fullResponse(path, body, { 'x-mock-trailers': '1' });
      expect(t.res.statusCode).toBe(200);
      expect(t.res.headers['transfer-encoding']).toBe('chunked');
      expect(t.res.headers['content-length']).toBeUndefined();
      expect(t.res.headers.trailer).toBe('x-mock-done');
      expect(t.trailers).toEqual({ 'x-mock-done': '1' });
      const norm = (s: string) =>
        s
          .replace(/"created(_at)?":("[^"]*"|\d+)/g, '"created":0')
          .replace(/(chat)?cmpl-mock\d+/g, 'ID')
          .replace(/"(total|load|prompt_eval|eval)_duration":\d+/g, '"$1_duration":0');
      expect(norm(t.body)).toBe(norm(plain.body));
    });
  }

  it('errors are unaffected (content-length, no trailer)', async () => {
    const t = await fullResponse(
      '/v1/chat/completions',
      { model: 'm', messages: user('x') },
      {
        'x-mock-trailers': '1',
        'x-mock-status': '503',
      },
    );
    expect(t.res.statusCode).toBe(503);
    expect(t.res.headers['content-length']).toBe(String(Buffer.byteLength(t.body)));
    expect(t.trailers).toEqual({});
  });
});

describe('x-mock-content-length', () => {
  const sse = { model: 'm', stream: true, stream_options: { include_usage: true }, messages: user('x') };
  it('an SSE stream built whole: its content-length, in one write without a chunk delay', async () => {
    const r = await fullResponse('/v1/chat/completions', sse, { 'x-mock-content-length': '1' });
    expect(r.res.headers['content-type']).toBe('text/event-stream');
    expect(r.res.headers['transfer-encoding']).toBeUndefined();
    expect(r.res.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(r.reads).toHaveLength(1);
    const chunks = sseChunks(r.body);
    expect(chunks).toHaveLength(5); // role, 3 content chunks (the last with the finish reason), usage
    expect(chunks.at(-1).usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
  });

  it('with x-mock-chunk-delay-ms: the same bytes and length, one write per event, paced', async () => {
    const t0 = Date.now();
    const r = await fullResponse('/v1/chat/completions', sse, {
      'x-mock-content-length': '1',
      'x-mock-chunk-delay-ms': '40',
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75); // two delayed content chunks
    expect(r.res.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(r.reads.length).toBeGreaterThanOrEqual(3);
    expect(sseChunks(r.body)).toHaveLength(5);
  });

  it('NDJSON too; non-streamed answers keep their usual content-length', async () => {
    const r = await fullResponse('/api/chat', { model: 'm', messages: user('x') }, { 'x-mock-content-length': '1' });
    expect(r.res.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(ndjson(r.body).at(-1)).toMatchObject({ done: true, eval_count: 3 });
    const j = await fullResponse(
      '/v1/chat/completions',
      { model: 'm', messages: user('x') },
      {
        'x-mock-content-length': '1',
      },
    );
    expect(j.res.headers['content-length']).toBe(String(Buffer.byteLength(j.body)));
  });
});

describe('received', () => {
  it('records method, path, headers, raw body and parsed JSON; reset empties it', async () => {
    mock.reset();
    expect(mock.received).toHaveLength(0);
    const raw = '{"model":"mock-small","input":["one two","three"],"x":"é"}';
    await post('/v1/embeddings?api-version=1', raw, { 'x-test': 'yes' });
    await post('/v1/chat/completions', '{broken');
    await fetch(`${mock.url}/v1/models`);
    expect(mock.received).toHaveLength(3);
    const [emb, broken, models] = mock.received;
    expect(emb).toMatchObject({ method: 'POST', path: '/v1/embeddings', json: JSON.parse(raw) });
    expect(Buffer.isBuffer(emb!.body)).toBe(true);
    expect(emb!.body.equals(Buffer.from(raw))).toBe(true);
    expect(emb!.headers['x-test']).toBe('yes');
    expect(emb!.headers['content-type']).toBe('application/json');
    expect(broken).toMatchObject({ method: 'POST', path: '/v1/chat/completions', json: undefined });
    expect(broken!.body.toString()).toBe('{broken');
    expect(models).toMatchObject({ method: 'GET', path: '/v1/models', json: undefined });
    expect(models!.body.length).toBe(0);
    mock.reset();
    expect(mock.received).toHaveLength(0);
  });

  it('complete: true for a whole request; an upload cut mid-body is recorded with complete: false and its bytes', async () => {
    mock.reset();
    await post('/v1/chat/completions', { model: 'm', messages: [] });
    expect(mock.received[0]!.complete).toBe(true);
    const socket = connect({ host: '127.0.0.1', port: mock.port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(
      'POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: m\r\ncontent-type: application/json\r\ncontent-length: 100\r\nx-test: cut\r\n\r\n{"model":"m',
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(mock.uploading).toBe(1);
    socket.destroy();
    const start = Date.now();
    while (mock.received.length < 2 && Date.now() - start < 2000) await new Promise((r) => setTimeout(r, 10));
    expect(mock.received).toHaveLength(2);
    const cut = mock.received[1]!;
    expect(cut).toMatchObject({ method: 'POST', path: '/v1/chat/completions', complete: false, json: undefined });
    expect(cut.headers['x-test']).toBe('cut');
    expect(cut.body.toString()).toBe('{"model":"m');
    expect(mock.uploading).toBe(0);
    // and the mock serves on
    expect((await post('/v1/chat/completions', { model: 'm', messages: [] })).status).toBe(200);
  });

  it('records a request before answering it', async () => {
    mock.reset();
    const r = post('/v1/chat/completions', { model: 'm', messages: [] }, { 'x-mock-latency-ms': '150' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(mock.received).toHaveLength(1);
    expect((await r).status).toBe(200);
  });
});

describe('timing and aborts', () => {
  it('latency before headers and a delay before each content chunk, by header', async () => {
    const t0 = performance.now();
    const r = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: user('x') },
      { 'x-mock-latency-ms': '100', 'x-mock-chunk-delay-ms': '30', 'x-mock-chunks': '4' },
    );
    const headersAt = performance.now() - t0;
    expect(sseChunks(await r.text())).toHaveLength(5);
    expect(headersAt).toBeGreaterThanOrEqual(95);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100 + 4 * 30 - 5);
  });

  it('latency and chunk delay from the options', async () => {
    const slow = await startMockModel({ latencyMs: 80, chunks: 3, chunkDelayMs: 40 });
    try {
      const t0 = performance.now();
      const r = await fetch(`${slow.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', prompt: 'p' }),
      });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
      const lines = ndjson(await r.text());
      expect(lines.map((l) => l.response).join('')).toBe('Hello from the');
      // the first line comes with the headers; two delays between three lines
      expect(performance.now() - t0).toBeGreaterThanOrEqual(80 + 2 * 40 - 5);
      expect(lines.at(-1).eval_duration).toBeGreaterThanOrEqual(2 * 40e6 - 5e6);
    } finally {
      await slow.close();
    }
  });

  it('rejects invalid options', async () => {
    await expect(startMockModel({ chunks: -1 })).rejects.toThrow(RangeError);
    await expect(startMockModel({ latencyMs: Number.NaN })).rejects.toThrow(RangeError);
  });

  /** Counts the live timers of exactly `ms` milliseconds (a duration nothing else uses). */
  function watchTimers(ms: number) {
    const live = new Set<number>();
    const hook = createHook({
      init(id, type, _trigger, resource) {
        if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === ms) live.add(id);
      },
      destroy(id) {
        live.delete(id);
      },
    }).enable();
    return { count: () => live.size, stop: () => void hook.disable() };
  }

  /** A raw request on its own connection, so only the server's timers change while it runs. */
  async function openRaw(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
    const req = request(`${url}${path}`, { method: 'POST', agent: false, headers });
    req.on('error', () => {});
    const response = new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
    req.end(JSON.stringify(body));
    return { req, response };
  }
  const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

  it('a client leaving mid-stream stops the writes and clears the timer; the mock serves on', async () => {
    const m = await startMockModel({ chunks: 1000, chunkDelayMs: 4321 });
    const timers = watchTimers(4321);
    try {
      const { req, response } = await openRaw(m.url, '/v1/chat/completions', {
        model: 'm',
        stream: true,
        messages: user('x'),
      });
      const res = await response;
      const first = await new Promise<Buffer>((resolve) => res.once('data', resolve));
      expect(first.toString()).toContain('"role":"assistant"');
      await settle();
      expect(timers.count()).toBe(1); // the wait before the first content chunk
      req.destroy();
      await settle();
      expect(timers.count()).toBe(0);
      expect(m.received).toHaveLength(1);
      const ok = await fetch(`${m.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', messages: [] }),
        headers: { 'x-mock-chunks': '2' },
      });
      expect(((await ok.json()) as any).choices[0].message.content).toBe('Hello from');
    } finally {
      timers.stop();
      await m.close();
    }
  });

  it('a client leaving during the latency clears that timer too', async () => {
    const m = await startMockModel({ latencyMs: 4321 });
    const timers = watchTimers(4321);
    try {
      const { req } = await openRaw(m.url, '/api/generate', { model: 'm', prompt: 'p' });
      await settle();
      expect(m.received).toHaveLength(1);
      expect(timers.count()).toBe(1);
      req.destroy();
      await settle();
      expect(timers.count()).toBe(0);
    } finally {
      timers.stop();
      await m.close();
    }
  });

  it('close() cuts streams in flight and resolves; a second close() too', async () => {
    const m = await startMockModel({ chunks: 100, chunkDelayMs: 1000 });
    const r = await fetch(`${m.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [] }) });
    const t0 = performance.now();
    await m.close();
    await m.close();
    expect(performance.now() - t0).toBeLessThan(500);
    await expect(r.text()).rejects.toThrow();
  });

  it('serves 200 concurrent streams on kept-alive connections', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const r = await post('/v1/chat/completions', {
          model: 'm',
          stream: true,
          stream_options: { include_usage: true },
          messages: user('w '.repeat(i + 1)),
        });
        const chunks = sseChunks(await r.text());
        return chunks.at(-1).usage.prompt_tokens;
      }),
    );
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});

describe('CLI', () => {
  it('prints where it listens, serves, and exits 0 on SIGTERM', async () => {
    const script = fileURLToPath(new URL('./model-server.ts', import.meta.url));
    const child = spawn(process.execPath, [script, '--port', '0', '--chunks', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      const m = /^mock model listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      expect(m).not.toBeNull();
      expect(Number(m![2])).toBeGreaterThan(0);
      const r = await fetch(`${m![1]}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', messages: [] }),
      });
      expect(((await r.json()) as any).choices[0].message.content).toBe('Hello from');
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses a bad number', async () => {
    const script = fileURLToPath(new URL('./model-server.ts', import.meta.url));
    const child = spawn(process.execPath, [script, '--port', '0', '--chunks', 'many'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(err).toContain('--chunks');
  });
});

describe('with the official openai client', () => {
  const client = () => new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'x', maxRetries: 0 });

  it('non-streamed chat', async () => {
    const r = await client().chat.completions.create({
      model: 'mock-large',
      messages: [{ role: 'user', content: 'one two' }],
    });
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('mock-large');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]?.message).toEqual({ role: 'assistant', content: 'Hello from the' });
    expect(r.choices[0]?.finish_reason).toBe('stop');
    expect(r.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });

  it('streamed chat with include_usage', async () => {
    const stream = await client().chat.completions.create({
      model: 'mock-small',
      messages: [{ role: 'user', content: 'one' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const finishes: (string | null | undefined)[] = [];
    const chunks = [];
    for await (const c of stream) {
      chunks.push(c);
      text += c.choices[0]?.delta?.content ?? '';
      if (c.choices[0]) finishes.push(c.choices[0].finish_reason);
    }
    expect(text).toBe('Hello from the');
    expect(finishes).toEqual([null, null, null, 'stop']);
    expect(chunks).toHaveLength(5);
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
  });

  it('the stream helper assembles the same completion', async () => {
    const runner = client().chat.completions.stream({
      model: 'mock-small',
      messages: [{ role: 'user', content: 'a b' }],
      stream_options: { include_usage: true },
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe('Hello from the');
    expect(final.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });

  it('embeddings: the default base64 path and explicit floats decode to the same vectors', async () => {
    const viaBase64 = await client().embeddings.create({ model: 'mock-small', input: ['a', 'b c'] });
    expect(viaBase64.data.map((d) => d.embedding)).toEqual([mockEmbedding('a'), mockEmbedding('b c')]);
    expect(viaBase64.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    const viaFloat = await client().embeddings.create({ model: 'mock-small', input: 'a', encoding_format: 'float' });
    expect(viaFloat.data[0]?.embedding).toEqual(mockEmbedding('a'));
    expect(mock.received.at(-2)?.json).toMatchObject({ encoding_format: 'base64' });
  });

  it('completions', async () => {
    const r = await client().completions.create({ model: 'mock-small', prompt: 'x y z' });
    expect(r.choices[0]?.text).toBe('Hello from the');
    expect(r.usage).toEqual({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });

  it('models', async () => {
    const page = await client().models.list();
    expect(page.data.map((m) => m.id)).toEqual(['mock-small', 'mock-large']);
  });

  it('an x-mock-status error surfaces as the SDK error class for it', async () => {
    const err = await client()
      .chat.completions.create(
        { model: 'mock-small', messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '503' } },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain('mock error');
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe('server_error');
  });
});

describe('TGI native endpoints', () => {
  let m: MockModel;
  beforeAll(async () => {
    m = await startMockModel({ chunks: 4 });
  });
  afterAll(async () => {
    await m.close();
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${m.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const inputs = 'count these words, 日本';

  it('/generate_stream: one event per piece, then the end token with generated_text and details', async () => {
    const r = await post('/generate_stream', { inputs }, { 'x-mock-content': 'Hello there, world!' });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const events = (await r.text())
      .split('\n\n')
      .filter((b) => b.startsWith('data:'))
      .map((b) => JSON.parse(b.slice(5)));
    expect(events).toHaveLength(5);
    expect(
      events
        .slice(0, 4)
        .map((e) => e.token.text)
        .join(''),
    ).toBe('Hello there, world!');
    expect(events.slice(0, 4).every((e) => e.details === null && e.generated_text === null)).toBe(true);
    expect(events[4]).toMatchObject({
      token: { special: true },
      generated_text: 'Hello there, world!',
      details: {
        generated_tokens: countText(TGI_MOCK_ENCODING, 'Hello there, world!'),
        input_length: countText(TGI_MOCK_ENCODING, inputs),
      },
    });
  });

  it('/generate: details only when asked, prefill only with decoder_input_details; / answers an array', async () => {
    const json = async (r: Promise<Response>) => (await (await r).json()) as Record<string, any>;
    expect(Object.keys(await json(post('/generate', { inputs })))).toEqual(['generated_text']);
    const d = (await json(post('/generate', { inputs, parameters: { details: true } }))).details;
    expect(d.prefill).toEqual([]);
    const full = await json(post('/generate', { inputs, parameters: { details: true, decoder_input_details: true } }));
    expect(full.details.prefill).toHaveLength(countText(TGI_MOCK_ENCODING, inputs));
    const compat = await (await post('/', { inputs })).json();
    expect(compat).toEqual([{ generated_text: full.generated_text }]);
    expect((await post('/', { inputs, stream: true })).headers.get('content-type')).toBe('text/event-stream');
    expect((await post('/generate', { inputs: 3 })).status).toBe(422);
  });
});
