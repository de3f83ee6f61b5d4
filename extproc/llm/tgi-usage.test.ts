// TGI's native API: usage from `details` in whole responses and in streams (the last SSE event),
// at every split point, and the texts a content scanner and the tokenizer fallback see.
import { describe, expect, it } from 'vitest';
import { createJsonUsageReader } from './json-usage-reader.ts';
import { createResponseStream, type ResponseEvent } from './response-stream.ts';
import { tgiUsage, type Usage } from './usage.ts';

const up = (inputTokens: number, outputTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  totalTokens: inputTokens + outputTokens,
  source: 'upstream',
});

describe('tgiUsage', () => {
  const table: [string, unknown, Usage | undefined][] = [
    [
      'stream details: input_length',
      { finish_reason: 'length', generated_tokens: 5, input_length: 7, seed: null },
      up(7, 5),
    ],
    [
      'whole details with prefill (decoder_input_details)',
      { finish_reason: 'eos_token', generated_tokens: 2, prefill: [{ id: 1 }, { id: 2 }, { id: 3 }], tokens: [] },
      up(3, 2),
    ],
    ['input_length wins over prefill', { generated_tokens: 2, input_length: 9, prefill: [{ id: 1 }] }, up(9, 2)],
    // Half a count is not recorded as upstream's: the gate counts with a tokenizer instead.
    ['no input count (details without decoder_input_details)', { generated_tokens: 2, prefill: [] }, undefined],
    ['no generated_tokens', { input_length: 3 }, undefined],
    ['negative or non-numeric counts', { generated_tokens: -1, input_length: '3' }, undefined],
    ['null details', null, undefined],
  ];
  for (const [name, details, want] of table) it(name, () => expect(tgiUsage(details)).toEqual(want));
});

describe('TGI /generate JSON', () => {
  const table: [string, 'tgi.generate' | 'tgi.generate_stream', string, Usage | undefined][] = [
    ['without details: no upstream usage', 'tgi.generate', '{"generated_text":"hello there"}', undefined],
    [
      'details without prefill: no upstream usage',
      'tgi.generate',
      '{"generated_text":"hi","details":{"finish_reason":"length","generated_tokens":2,"seed":null,"prefill":[],"tokens":[{"id":5,"text":"hi","logprob":-0.1,"special":false}]}}',
      undefined,
    ],
    [
      'details with prefill',
      'tgi.generate',
      '{"generated_text":"hi","details":{"finish_reason":"length","generated_tokens":2,"seed":null,"prefill":[{"id":1,"text":"<s>","logprob":null},{"id":9,"text":"a","logprob":-2.5}],"tokens":[]}}',
      up(2, 2),
    ],
    ['an OpenAI usage object is not read', 'tgi.generate', '{"usage":{"prompt_tokens":3}}', undefined],
    [
      'details nested deeper is not the top-level one',
      'tgi.generate',
      '{"x":{"details":{"generated_tokens":1,"input_length":1}}}',
      undefined,
    ],
  ];
  for (const [name, kind, body, want] of table) {
    it(`${name}: whole and at every split point`, () => {
      const bytes = Buffer.from(body);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const r = createJsonUsageReader(kind);
        r.push(Buffer.from(bytes.subarray(0, cut)), false);
        r.push(Buffer.from(bytes.subarray(cut)), true);
        expect(r.usage).toEqual(want);
        expect(r.model).toBeUndefined();
      }
    });
  }

  it('a details object past the kept size gives no usage (the tokenizer counts instead), never a partial one', () => {
    const tokens = Array.from({ length: 2000 }, (_, i) => ({ id: i, text: 'tok', logprob: -0.5, special: false }));
    const body = JSON.stringify({
      generated_text: 'x',
      details: { generated_tokens: 2000, prefill: [{ id: 1, text: 'a', logprob: null }], tokens },
    });
    const r = createJsonUsageReader('tgi.generate');
    r.push(Buffer.from(body), true);
    expect(r.complete).toBe(true);
    expect(r.usage).toBeUndefined();
  });
});

const tok = (id: number, text: string, special = false) => ({ id, text, logprob: -0.25, special });
const sse = (o: unknown) => `data:${JSON.stringify(o)}\n\n`;
const stream = [
  sse({ index: 1, token: tok(10, 'Hé'), top_tokens: null, generated_text: null, details: null }),
  sse({ index: 2, token: tok(11, 'llo 世界'), top_tokens: null, generated_text: null, details: null }),
  sse({ index: 3, token: tok(12, ' 🙂'), top_tokens: null, generated_text: null, details: null }),
  sse({
    index: 4,
    token: tok(2, '</s>', true),
    top_tokens: null,
    generated_text: 'Héllo 世界 🙂',
    details: { finish_reason: 'eos_token', generated_tokens: 4, input_length: 6, seed: null },
  }),
].join('');

describe('TGI /generate_stream SSE', () => {
  it('usage from the last event at every split point; the chunks pass as they came', () => {
    const bytes = Buffer.from(stream);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const rs = createResponseStream({ format: 'sse', kind: 'tgi.generate_stream', dropUsageEvent: true });
      const a = Buffer.from(bytes.subarray(0, cut));
      const b = Buffer.from(bytes.subarray(cut));
      expect(rs.push(a, false)).toBe(a);
      expect(rs.push(b, true)).toBe(b);
      expect(rs.usage).toEqual(up(6, 4));
      expect(rs.events).toBe(4);
      expect(rs.model).toBeUndefined();
    }
  });

  it('the compat route streams the same events', () => {
    const rs = createResponseStream({ format: 'sse', kind: 'tgi.generate', dropUsageEvent: false });
    rs.push(Buffer.from(stream), true);
    expect(rs.usage).toEqual(up(6, 4));
  });

  it('only the event whose details are not null is parsed on the metering path', () => {
    const rs = createResponseStream({ format: 'sse', kind: 'tgi.generate_stream', dropUsageEvent: false });
    const broken = stream.replace('"index":2', '"index":2,}');
    rs.push(Buffer.from(broken), true);
    // The malformed event has "details":null, so it is never parsed: nothing counted as malformed.
    expect(rs.malformed).toBe(0);
    expect(rs.usage).toEqual(up(6, 4));
  });

  it('events give token.text as choice 0, special tokens left out (generated_text leaves them out too)', () => {
    const texts: string[] = [];
    const rs = createResponseStream({
      format: 'sse',
      kind: 'tgi.generate_stream',
      dropUsageEvent: false,
      readOnlyEvents: true,
      onEvent: (e: ResponseEvent) => {
        for (const t of e.texts) {
          expect(t.choice).toBe(0);
          texts.push(t.text);
        }
        expect(e.toolArguments).toEqual([]);
      },
    });
    const bytes = Buffer.from(stream);
    for (let i = 0; i < bytes.length; i += 7) rs.push(Buffer.from(bytes.subarray(i, i + 7)), i + 7 >= bytes.length);
    expect(texts.join('')).toBe('Héllo 世界 🙂');
  });

  it('an error ends the stream as TGI clients read one: error and error_type', () => {
    const rs = createResponseStream({
      format: 'sse',
      kind: 'tgi.generate_stream',
      dropUsageEvent: false,
      onEvent: (e) => {
        if (e.texts[0]?.text === 'llo 世界')
          rs.endWithError({ message: 'blocked', type: 'content_filter', code: 'content_blocked', param: null });
      },
    });
    const out = rs.push(Buffer.from(stream), true).toString();
    expect(out.startsWith(stream.slice(0, stream.indexOf('data:', 1)))).toBe(true);
    expect(out.endsWith('data: {"error":"blocked","error_type":"content_filter"}\n\n')).toBe(true);
    expect(out).not.toContain('generated_text":"H');
  });
});
