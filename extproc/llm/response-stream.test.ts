// The stream reader against realistic OpenAI and Ollama streams, fed split at every byte
// boundary and at random multi-splits: output and usage must not depend on where TCP cut.
import { describe, expect, it } from 'vitest';
import { createResponseStream } from './response-stream.ts';

const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'llama-3.1-8b' };
const role = ev({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' } }], usage: null });
const contents = ['héllo', ' 世界', ' 🙂', ' done'].map((c) =>
  ev({ ...base, choices: [{ index: 0, delta: { content: c } }], usage: null }),
);
const finish = ev({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null });
const usageEv = ev({ ...base, choices: [], usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 } });
const done = 'data: [DONE]\n\n';
const openai = [role, ...contents, finish, usageEv, done].join('');
const openaiWithoutUsage = [role, ...contents, finish, done].join('');

const ollama = [
  ...['Hi', ' thé', 're'].map(
    (c) => `${JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: c }, done: false })}\n`,
  ),
  `${JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: '' }, done: true, prompt_eval_count: 9, eval_count: 3 })}\n`,
].join('');

/** Feed `text` cut at the given byte offsets; returns concatenated output and the reader. */
function feed(text: string, cuts: number[], opts: Parameters<typeof createResponseStream>[0]) {
  const bytes = Buffer.from(text);
  const rs = createResponseStream(opts);
  const out: Buffer[] = [];
  let identity = true;
  const points = [0, ...cuts, bytes.length];
  for (let i = 0; i + 1 < points.length; i++) {
    const chunk = Buffer.from(bytes.subarray(points[i]!, points[i + 1]!));
    const r = rs.push(chunk, i + 2 === points.length);
    if (r !== chunk) identity = false;
    out.push(r);
  }
  return { out: Buffer.concat(out).toString(), rs, identity };
}

function seeded(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

describe('OpenAI SSE', () => {
  const len = Buffer.byteLength(openai);

  it('withholding: every single split point yields the stream minus the usage event, and the usage', () => {
    for (let cut = 1; cut < len; cut++) {
      const { out, rs } = feed(openai, [cut], { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
      expect(out, `cut at ${cut}`).toBe(openaiWithoutUsage);
      expect(rs.usage, `cut at ${cut}`).toEqual({ inputTokens: 11, outputTokens: 4, totalTokens: 15 });
      expect(rs.model).toBe('llama-3.1-8b');
    }
  });

  it('not withholding: every split point passes the very same Buffers and still finds usage', () => {
    for (let cut = 1; cut < len; cut++) {
      const { out, rs, identity } = feed(openai, [cut], { format: 'sse', kind: 'openai.chat', dropUsageEvent: false });
      expect(identity).toBe(true);
      expect(out).toBe(openai);
      expect(rs.usage?.totalTokens, `cut at ${cut}`).toBe(15);
    }
  });

  it('random multi-splits (fixed seed) agree', () => {
    const rnd = seeded(42);
    for (let round = 0; round < 300; round++) {
      const cuts = [
        ...new Set(Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => 1 + Math.floor(rnd() * (len - 1)))),
      ].sort((a, b) => a - b);
      const { out, rs } = feed(openai, cuts, { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
      expect(out).toBe(openaiWithoutUsage);
      expect(rs.usage?.inputTokens).toBe(11);
      expect(rs.events).toBe(8);
    }
  });

  it('whole events with nothing withheld go out as the same Buffer even when withholding', () => {
    const rs = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    const chunk = Buffer.from(role + contents[0]);
    expect(rs.push(chunk, false)).toBe(chunk);
  });

  const variants: [string, string][] = [
    ['CRLF line endings', openai.replaceAll('\n', '\r\n')],
    ['CR line endings', openai.replaceAll('\n', '\r')],
    ['comments and keep-alives', `: ping\n\n${role}: keep-alive\n\n${contents.join('')}${finish}${usageEv}${done}`],
    ['event names and ids', openai.replaceAll('data: ', 'event: message\nid: 7\ndata: ')],
    ['no space after data:', openai.replaceAll('data: ', 'data:')],
    ['a BOM at the start', `\uFEFF${openai}`],
  ];
  for (const [name, text] of variants) {
    it(`${name}: usage found at every split, only the usage event withheld`, () => {
      const n = Buffer.byteLength(text);
      for (let cut = 1; cut < n; cut += 3) {
        const { out, rs } = feed(text, [cut], { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
        expect(rs.usage?.totalTokens, `cut at ${cut}`).toBe(15);
        expect(out.includes('"prompt_tokens"'), `cut at ${cut}`).toBe(false);
        expect(Buffer.byteLength(out)).toBeGreaterThan(n / 2);
      }
    });
  }

  it('vLLM continuous usage (usage on every chunk): last one wins, nothing withheld', () => {
    const chunks = [1, 2, 3].map((k) =>
      ev({
        ...base,
        choices: [{ index: 0, delta: { content: 'x' } }],
        usage: { prompt_tokens: 5, completion_tokens: k, total_tokens: 5 + k },
      }),
    );
    const text = chunks.join('') + done;
    const { out, rs } = feed(text, [50, 200], { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    expect(out).toBe(text);
    expect(rs.usage).toEqual({ inputTokens: 5, outputTokens: 3, totalTokens: 8 });
  });

  it('malformed JSON is counted and forwarded, never thrown', () => {
    const text = `data: {"broken": \n\n${usageEv}${done}`;
    const { out, rs } = feed(text, [], { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    expect(out).toBe(`data: {"broken": \n\n${done}`);
    expect(rs.malformed).toBe(1);
  });

  it('no usage in the stream: usage stays undefined, not zero', () => {
    const { rs } = feed(openaiWithoutUsage, [17], { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    expect(rs.usage).toBeUndefined();
  });

  it('a truncated last event is released at end of stream', () => {
    const text = `${role}data: {"partial`;
    const { out } = feed(text, [5], { format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    expect(out).toBe(text);
  });
});

describe('Ollama NDJSON', () => {
  it('usage from the done line at every split point; nothing withheld', () => {
    const n = Buffer.byteLength(ollama);
    for (let cut = 1; cut < n; cut++) {
      const { out, rs, identity } = feed(ollama, [cut], {
        format: 'ndjson',
        kind: 'ollama.chat',
        dropUsageEvent: true,
      });
      expect(out).toBe(ollama);
      expect(identity).toBe(true);
      expect(rs.usage, `cut at ${cut}`).toEqual({ inputTokens: 9, outputTokens: 3, totalTokens: 12 });
      expect(rs.model).toBe('llama3');
      expect(rs.events).toBe(4);
    }
  });

  it('a last line without newline and blank lines are handled', () => {
    const text = `\n${ollama.trimEnd()}`;
    const { rs } = feed(text, [3], { format: 'ndjson', kind: 'ollama.generate', dropUsageEvent: false });
    expect(rs.usage?.outputTokens).toBe(3);
    expect(rs.events).toBe(4);
  });
});
