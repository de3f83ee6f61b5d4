// The mock is the one faked part of the stack: its wire formats must be what real servers and
// the official SDK produce, or the e2e tests prove nothing.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockModel, startMockModel } from './model-server.ts';

let mock: MockModel;
beforeAll(async () => {
  mock = await startMockModel({ chunks: 3 });
});
afterAll(() => mock.close());

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${mock.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
const sseEvents = (text: string) =>
  text
    .split('\n\n')
    .filter(Boolean)
    .map((e) => e.replace(/^data: /, ''));

describe('OpenAI endpoints', () => {
  it('GET /v1/models lists the mock models', async () => {
    const r = (await (await fetch(`${mock.url}/v1/models`)).json()) as any;
    expect(r.object).toBe('list');
    expect(r.data.map((m: any) => m.id)).toEqual(['mock-small', 'mock-large']);
  });

  const usageCases: [string, Record<string, unknown>, Record<string, string>, boolean][] = [
    ['auto without include_usage', {}, {}, false],
    ['auto with include_usage', { stream_options: { include_usage: true } }, {}, true],
    ['always', {}, { 'x-mock-usage': 'always' }, true],
    ['never, even when asked', { stream_options: { include_usage: true } }, { 'x-mock-usage': 'never' }, false],
  ];
  for (const [name, extra, headers, wantUsage] of usageCases) {
    it(`streamed chat, usage ${name}`, async () => {
      const r = await post(
        '/v1/chat/completions',
        { model: 'mock-small', stream: true, messages: [{ role: 'user', content: 'a b c d' }], ...extra },
        headers,
      );
      expect(r.headers.get('content-type')).toBe('text/event-stream');
      const events = sseEvents(await r.text());
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
      expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Hello from the');
      const usage = chunks.filter((c) => c.usage);
      if (wantUsage) {
        expect(usage).toHaveLength(1);
        expect(usage[0]).toMatchObject({
          choices: [],
          usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
        });
        expect(chunks.filter((c) => c.choices.length > 0).every((c) => c.usage === null)).toBe(true);
      } else {
        expect(usage).toHaveLength(0);
        expect(chunks.every((c) => !('usage' in c))).toBe(true);
      }
    });
  }

  it('completions, streamed and not', async () => {
    const whole = (await (await post('/v1/completions', { model: 'mock-small', prompt: 'x y' })).json()) as any;
    expect(whole).toMatchObject({
      object: 'text_completion',
      choices: [{ text: 'Hello from the' }],
      usage: { prompt_tokens: 2 },
    });
    const streamed = sseEvents(
      await (await post('/v1/completions', { model: 'mock-small', prompt: 'x', stream: true })).text(),
    );
    expect(
      streamed
        .slice(0, -1)
        .map((e) => JSON.parse(e).choices[0].text)
        .join(''),
    ).toBe('Hello from the');
  });

  it('records what it received, body and headers', async () => {
    mock.reset();
    await post('/v1/embeddings', { model: 'mock-small', input: ['one two', 'three'] }, { 'x-test': 'yes' });
    expect(mock.received).toHaveLength(1);
    const got = mock.received[0]!;
    expect(got).toMatchObject({ method: 'POST', path: '/v1/embeddings', json: { input: ['one two', 'three'] } });
    expect(got.headers['x-test']).toBe('yes');
    expect(got.body.toString()).toBe(JSON.stringify({ model: 'mock-small', input: ['one two', 'three'] }));
  });

  const errors: [string, string, unknown, Record<string, string>, number][] = [
    ['body not an object', '/v1/chat/completions', [1], {}, 400],
    ['no model', '/v1/chat/completions', { messages: [] }, {}, 400],
    ['no messages', '/v1/chat/completions', { model: 'm' }, {}, 400],
    ['unknown path', '/v1/nope', { model: 'm' }, {}, 404],
    ['x-mock-status', '/v1/chat/completions', { model: 'm', messages: [] }, { 'x-mock-status': '503' }, 503],
  ];
  for (const [name, path, body, headers, status] of errors) {
    it(`${name} → ${status} with an OpenAI error body`, async () => {
      const r = await post(path, body, headers);
      expect(r.status).toBe(status);
      expect(((await r.json()) as any).error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
    });
  }

  it('x-mock-split cuts events inside a multi-byte character and the stream still decodes the same', async () => {
    const body = { model: 'mock-small', stream: true, messages: [{ role: 'user', content: 'x' }] };
    const content = encodeURIComponent('é€😀');
    const plain = await (await post('/v1/chat/completions', body, { 'x-mock-content': content })).text();
    const split = await (
      await post('/v1/chat/completions', body, { 'x-mock-content': content, 'x-mock-split': '1' })
    ).text();
    expect(split.replace(/"created":\d+,/g, '').replace(/mock-\d+/g, 'id')).toBe(
      plain.replace(/"created":\d+,/g, '').replace(/mock-\d+/g, 'id'),
    );
  });

  it('timing overrides: latency before headers and delay between chunks', async () => {
    const t0 = Date.now();
    const r = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: [] },
      { 'x-mock-latency-ms': '100', 'x-mock-chunk-delay-ms': '30', 'x-mock-chunks': '4' },
    );
    const headersAt = Date.now() - t0;
    await r.text();
    expect(headersAt).toBeGreaterThanOrEqual(95);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95 + 4 * 30 - 10);
  });
});

describe('Ollama endpoints', () => {
  it('/api/chat streams NDJSON by default, with counts on the done line', async () => {
    const r = await post('/api/chat', { model: 'mock-small', messages: [{ role: 'user', content: 'hi there' }] });
    expect(r.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await r.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      lines
        .filter((l) => !l.done)
        .map((l) => l.message.content)
        .join(''),
    ).toBe('Hello from the');
    expect(lines.at(-1)).toMatchObject({ done: true, done_reason: 'stop', prompt_eval_count: 2, eval_count: 3 });
  });

  it('/api/generate with stream:false answers one JSON object', async () => {
    const r = (await (
      await post('/api/generate', { model: 'mock-small', prompt: 'a b c', stream: false })
    ).json()) as any;
    expect(r).toMatchObject({ response: 'Hello from the', done: true, prompt_eval_count: 3, eval_count: 3 });
  });

  it('x-mock-usage: never omits the counts', async () => {
    const r = (await (
      await post('/api/generate', { model: 'm', prompt: 'a', stream: false }, { 'x-mock-usage': 'never' })
    ).json()) as any;
    expect(r.done).toBe(true);
    expect(r.prompt_eval_count).toBeUndefined();
  });

  it('GET /api/tags lists the models', async () => {
    const r = (await (await fetch(`${mock.url}/api/tags`)).json()) as any;
    expect(r.models.map((m: any) => m.name)).toEqual(['mock-small', 'mock-large']);
  });
});

describe('with the official openai client', () => {
  const client = () => new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'x', maxRetries: 0 });

  it('non-streamed chat', async () => {
    const r = await client().chat.completions.create({
      model: 'mock-large',
      messages: [{ role: 'user', content: 'one two' }],
    });
    expect(r.model).toBe('mock-large');
    expect(r.choices[0]?.message.content).toBe('Hello from the');
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
    let usage: unknown;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('Hello from the');
    expect(usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
  });

  it('embeddings', async () => {
    const r = await client().embeddings.create({ model: 'mock-small', input: ['a', 'b c'] });
    expect(r.data.map((d) => d.embedding.length)).toEqual([8, 8]);
    expect(r.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
  });
});
