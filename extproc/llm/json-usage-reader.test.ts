import { describe, expect, it } from 'vitest';
import { createJsonUsageReader } from './json-usage-reader.ts';
import type { ApiKind } from './shapes.ts';
import type { Usage } from './usage.ts';

const u = (inputTokens: number, outputTokens: number, totalTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  totalTokens,
  source: 'upstream',
});

function read(kind: ApiKind, chunks: Buffer[], end = true) {
  const r = createJsonUsageReader(kind);
  chunks.forEach((c, i) => {
    r.push(c, end && i === chunks.length - 1);
  });
  if (chunks.length === 0 && end) r.push(Buffer.alloc(0), true);
  return { usage: r.usage, model: r.model, complete: r.complete };
}

const table: [string, ApiKind, string | Buffer, Usage | undefined, string | undefined, boolean][] = [
  [
    'OpenAI chat',
    'openai.chat',
    '{"id":"c","object":"chat.completion","model":"llama-3.1-8b","choices":[{"index":0,"message":{"role":"assistant","content":"h\\u00e9 \\"x\\" 😀"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}',
    u(12, 3, 15),
    'llama-3.1-8b',
    true,
  ],
  [
    'OpenAI embeddings',
    'openai.embeddings',
    '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2.5e-3]}],"model":"bge-m3","usage":{"prompt_tokens":8,"total_tokens":8}}',
    u(8, 0, 8),
    'bge-m3',
    true,
  ],
  [
    'Ollama chat',
    'ollama.chat',
    '{"model":"llama3.2","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":26,"eval_count":298}',
    u(26, 298, 324),
    'llama3.2',
    true,
  ],
  [
    'Ollama generate, prompt cached',
    'ollama.generate',
    '{"model":"l","done":true,"eval_count":4}',
    u(0, 4, 4),
    'l',
    true,
  ],
  ['Ollama kind reads no OpenAI usage', 'ollama.chat', '{"usage":{"prompt_tokens":3}}', undefined, undefined, true],
  [
    'OpenAI kind reads no Ollama counts',
    'openai.chat',
    '{"prompt_eval_count":3,"eval_count":4}',
    undefined,
    undefined,
    true,
  ],
  [
    'escaped keys and model',
    'openai.chat',
    '{"\\u006dodel":"m\\u00e9","\\u0075sage":{"prompt_tokens":1,"completion_tokens":2}}',
    u(1, 2, 3),
    'mé',
    true,
  ],
  [
    'nested usage and model are not the top-level ones',
    'openai.chat',
    '{"choices":[{"model":"x","usage":{"prompt_tokens":9}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}',
    u(1, 1, 2),
    undefined,
    true,
  ],
  [
    'repeated keys: the last wins, as with JSON.parse',
    'openai.chat',
    '{"model":"a","usage":{"prompt_tokens":1},"model":"b","usage":{"prompt_tokens":2}}',
    u(2, 0, 2),
    'b',
    true,
  ],
  ['a last model that is not a string: none', 'openai.chat', '{"model":"a","model":3}', undefined, undefined, true],
  ['usage null', 'openai.chat', '{"model":"m","usage":null}', undefined, 'm', true],
  ['usage an array', 'openai.chat', '{"usage":[{"prompt_tokens":1}]}', undefined, undefined, true],
  [
    'with BOM',
    'openai.chat',
    '\uFEFF{"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}',
    u(1, 0, 1),
    'm',
    true,
  ],
  [
    'invalid UTF-8 in a generated text is tolerated',
    'openai.chat',
    Buffer.concat([
      Buffer.from('{"model":"m","choices":[{"text":"'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from('"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}'),
    ]),
    u(1, 1, 2),
    'm',
    true,
  ],
  ['truncated', 'openai.chat', '{"model":"m","usage":{"prompt_tokens":3', undefined, undefined, false],
  [
    'truncated after usage',
    'openai.chat',
    '{"model":"m","usage":{"prompt_tokens":3},"x":',
    undefined,
    undefined,
    false,
  ],
  ['trailing garbage', 'openai.chat', '{"model":"m","usage":{"prompt_tokens":3}} x', undefined, undefined, false],
  ['not an object', 'openai.chat', '[{"model":"m","usage":{"prompt_tokens":3}}]', undefined, undefined, true],
  ['empty', 'openai.chat', '', undefined, undefined, false],
  ['not JSON', 'openai.chat', 'upstream error', undefined, undefined, false],
];

describe('createJsonUsageReader', () => {
  for (const [name, kind, text, usage, model, complete] of table) {
    const body = Buffer.isBuffer(text) ? text : Buffer.from(text);
    it(`${name}: whole, at every split point, byte by byte`, () => {
      const want = { usage, model, complete };
      expect(read(kind, [body])).toEqual(want);
      for (let i = 0; i <= body.length; i++) expect(read(kind, [body.subarray(0, i), body.subarray(i)])).toEqual(want);
      expect(
        read(
          kind,
          Array.from(body, (_, i) => body.subarray(i, i + 1)),
        ),
      ).toEqual(want);
    });
  }

  it('reports usage as soon as it was read, before the end', () => {
    const r = createJsonUsageReader('openai.chat');
    r.push(Buffer.from('{"model":"m","usage":{"prompt_tokens":2,"completion_tokens":1}'), false);
    expect(r.usage).toEqual(u(2, 1, 3));
    expect(r.model).toBe('m');
    expect(r.complete).toBe(false);
    r.push(Buffer.from('}'), true);
    expect(r.complete).toBe(true);
  });

  it('ignores pushes after the end', () => {
    const r = createJsonUsageReader('openai.chat');
    r.push(Buffer.from('{"model":"m"}'), true);
    r.push(Buffer.from('x'), true);
    expect(r.model).toBe('m');
    expect(r.complete).toBe(true);
  });

  it('reads a 20 MiB embeddings response in 64 KiB chunks, generated as it goes', () => {
    const r = createJsonUsageReader('openai.embeddings');
    r.push(Buffer.from('{"object":"list","data":[{"object":"embedding","index":0,"embedding":['), false);
    const numbers = Buffer.from(`${'0.0123456789,'.repeat(5041)}0.5,`);
    let sent = 0;
    while (sent < 20 * 1024 * 1024) {
      r.push(numbers, false);
      sent += numbers.length;
    }
    r.push(Buffer.from('1]}],"model":"bge","usage":{"prompt_tokens":8,"total_tokens":8}}'), true);
    expect(r.usage).toEqual(u(8, 0, 8));
    expect(r.model).toBe('bge');
    expect(r.complete).toBe(true);
  });

  it('keeps no value over 64 KiB (a usage or model that big is not one)', () => {
    const huge = 'x'.repeat(70 * 1024);
    const body = Buffer.from(`{"model":"${huge}","usage":{"prompt_tokens":1,"pad":"${huge}"}}`);
    expect(read('openai.chat', [body])).toEqual({ usage: undefined, model: undefined, complete: true });
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += 1000) chunks.push(body.subarray(i, i + 1000));
    expect(read('openai.chat', chunks)).toEqual({ usage: undefined, model: undefined, complete: true });
  });

  it('a whole body over 64 KiB is scanned; one nested past the depth limit is refused in chunks only', () => {
    const deep = `{"x":${'['.repeat(600)}${']'.repeat(600)},"usage":{"prompt_tokens":1}}`;
    // Whole and small: the native parse, which has no scanner state to bound.
    expect(read('openai.chat', [Buffer.from(deep)]).usage).toEqual(u(1, 0, 1));
    expect(read('openai.chat', [Buffer.from(deep.slice(0, 10)), Buffer.from(deep.slice(10))]).usage).toBeUndefined();
    const big = Buffer.from(`{"model":"m","pad":"${'x'.repeat(70 * 1024)}","usage":{"prompt_tokens":2}}`);
    expect(read('openai.chat', [big])).toEqual({ usage: u(2, 0, 2), model: 'm', complete: true });
  });

  it('copies the bytes it keeps: a chunk reused by the caller does not change them', () => {
    const r = createJsonUsageReader('openai.chat');
    const chunk = Buffer.from('{"model":"ab');
    r.push(chunk, false);
    chunk.fill(0x20);
    r.push(Buffer.from('c"}'), true);
    expect(r.model).toBe('abc');
  });
});
