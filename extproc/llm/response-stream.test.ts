// The stream reader against realistic OpenAI and Ollama streams, fed split at every byte
// boundary and at random multi-splits: output and usage must not depend on where TCP cut.
import { describe, expect, it, vi } from 'vitest';
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
      expect(rs.usage, `cut at ${cut}`).toEqual({
        inputTokens: 11,
        outputTokens: 4,
        totalTokens: 15,
        source: 'upstream',
      });
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
    expect(rs.usage).toEqual({ inputTokens: 5, outputTokens: 3, totalTokens: 8, source: 'upstream' });
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
      expect(rs.usage, `cut at ${cut}`).toEqual({
        inputTokens: 9,
        outputTokens: 3,
        totalTokens: 12,
        source: 'upstream',
      });
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

// Exact bytes: the output must be the input with precisely the usage event's bytes (its blank
// line included) removed, for every line-ending style, at every split point, byte by byte, and
// at seeded random multi-splits; when not withholding, every returned Buffer is the pushed one.
describe('exact bytes (vLLM-style stream)', () => {
  const model = 'meta-llama/Llama-3.1-8B-Instruct';
  const head = { id: 'chatcmpl-9f2', object: 'chat.completion.chunk', created: 1732300000, model };
  const choice = (delta: Record<string, unknown>, finish: string | null = null) => [
    { index: 0, delta, logprobs: null, finish_reason: finish },
  ];
  const bodies = [
    { ...head, choices: choice({ role: 'assistant', content: '' }), usage: null },
    { ...head, choices: choice({ content: 'héllo' }), usage: null },
    { ...head, choices: choice({ content: ' 世界 🙂' }), usage: null },
    { ...head, choices: choice({}, 'stop'), usage: null },
  ];
  const usageBody = { ...head, choices: [], usage: { prompt_tokens: 21, completion_tokens: 7, total_tokens: 28 } };
  const want = { inputTokens: 21, outputTokens: 7, totalTokens: 28, source: 'upstream' };

  const mulberry32 = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  function pushAll(chunks: Buffer[], drop: boolean) {
    const rs = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: drop });
    const out: Buffer[] = [];
    let same = 0;
    chunks.forEach((c, i) => {
      const r = rs.push(c, i === chunks.length - 1);
      if (r === c) same++;
      out.push(r);
    });
    return { rs, out: Buffer.concat(out), same };
  }
  const at = (bytes: Buffer, cuts: number[]): Buffer[] => {
    const pts = [0, ...cuts, bytes.length];
    return pts.slice(1).map((p, i) => Buffer.from(bytes.subarray(pts[i]!, p)));
  };
  const bytewise = (bytes: Buffer) => Array.from({ length: bytes.length }, (_, i) => Buffer.from([bytes[i]!]));

  const styles: [string, string][] = [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ];
  for (const [style, eol] of styles) {
    const event = (o: unknown) => `data: ${JSON.stringify(o)}${eol}${eol}`;
    const usageEvent = event(usageBody);
    const input = `${bodies.map(event).join('')}${usageEvent}data: [DONE]${eol}${eol}`;
    const expected = Buffer.from(input.replace(usageEvent, ''));
    const bytes = Buffer.from(input);
    expect(expected.length).toBe(bytes.length - Buffer.byteLength(usageEvent));

    const check = (chunks: Buffer[], label: string) => {
      const d = pushAll(chunks, true);
      expect(d.out.equals(expected), `${label}: withheld output`).toBe(true);
      expect(d.rs.usage, label).toEqual(want);
      expect(d.rs.model, label).toBe(model);
      expect([d.rs.events, d.rs.malformed], label).toEqual([6, 0]);
      const k = pushAll(chunks, false);
      expect(k.same, `${label}: same Buffers`).toBe(chunks.length);
      expect(k.out.equals(bytes), label).toBe(true);
      expect(k.rs.usage, label).toEqual(want);
      expect([k.rs.events, k.rs.malformed], label).toEqual([6, 0]);
    };

    it(`${style}: whole, every single split point, and byte by byte`, () => {
      check([bytes], 'whole');
      for (let i = 0; i <= bytes.length; i++) check(at(bytes, [i]), `cut at ${i}`);
      check(bytewise(bytes), 'byte by byte');
    });

    it(`${style}: 400 seeded random multi-splits`, () => {
      const rnd = mulberry32(0x5eed);
      for (let round = 0; round < 400; round++) {
        const n = 1 + Math.floor(rnd() * 20);
        const cuts = [...new Set(Array.from({ length: n }, () => Math.floor(rnd() * (bytes.length + 1))))].sort(
          (a, b) => a - b,
        );
        check(at(bytes, cuts), `cuts ${cuts.join(',')}`);
      }
    });
  }

  it('while withholding, whole events go out as a view of the chunk; the unfinished tail is held', () => {
    const rs = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    const a = `data: ${JSON.stringify(bodies[0])}\n\n`;
    const chunk = Buffer.from(`${a}data: {"par`);
    const out = rs.push(chunk, false);
    expect(out.toString()).toBe(a);
    expect(out.buffer).toBe(chunk.buffer);
    expect(rs.push(Buffer.from('tial":1}\n\n'), false).toString()).toBe('data: {"partial":1}\n\n');
    expect(rs.push(Buffer.from('data: [DO'), false).length).toBe(0);
    expect(rs.push(Buffer.alloc(0), true).toString()).toBe('data: [DO');
  });

  it('the usage event alone in a chunk yields an empty Buffer; its split CRLF LF is withheld too', () => {
    const rs = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    const u = `data: ${JSON.stringify(usageBody)}\r\n\r`;
    expect(rs.push(Buffer.from(u), false).length).toBe(0);
    expect(rs.push(Buffer.from('\ndata: [DONE]\r\n\r\n'), true).toString()).toBe('data: [DONE]\r\n\r\n');
    expect(rs.usage).toEqual(want);
  });

  it('usage-only event pretty-printed over several data lines, usage key first', () => {
    const { usage, ...rest } = usageBody;
    const json = JSON.stringify({ usage, ...rest }, null, 1);
    const usageEvent = `${json
      .split('\n')
      .map((l) => `data: ${l}`)
      .join('\n')}\n\n`;
    const first = `data: ${JSON.stringify(bodies[0])}\n\n`;
    const chunks = [Buffer.from(`${first + usageEvent}data: [DONE]\n\n`)];
    const d = pushAll(chunks, true);
    expect(d.out.toString()).toBe(`${first}data: [DONE]\n\n`);
    expect(d.rs.usage).toEqual(want);
  });

  it('usage with non-empty choices or without choices is observed but never withheld', () => {
    const withChoices = `data: ${JSON.stringify({ ...usageBody, choices: choice({ content: 'x' }) })}\n\n`;
    const noChoices = `data: ${JSON.stringify({ usage: usageBody.usage })}\n\n`;
    for (const e of [withChoices, noChoices]) {
      const d = pushAll([Buffer.from(`${e}data: [DONE]\n\n`)], true);
      expect(d.out.toString()).toBe(`${e}data: [DONE]\n\n`);
      expect(d.same).toBe(1);
      expect(d.rs.usage).toEqual(want);
    }
  });

  it('a usage object OpenAI-shaped but unreadable (no prompt_tokens) is still the usage event: withheld, no usage', () => {
    const e = `data: ${JSON.stringify({ ...usageBody, usage: { foo: 1 } })}\n\n`;
    const d = pushAll([Buffer.from(`${e}data: [DONE]\n\n`)], true);
    expect(d.out.toString()).toBe('data: [DONE]\n\n');
    expect(d.rs.usage).toBeUndefined();
  });

  it('only events that can carry usage are JSON-parsed (plus the first, for the model)', () => {
    const many = Array.from({ length: 50 }, () => `data: ${JSON.stringify(bodies[1])}\n\n`).join('');
    const text = `${many}data: ${JSON.stringify(usageBody)}\n\ndata: [DONE]\n\n`;
    const spy = vi.spyOn(JSON, 'parse');
    try {
      const d = pushAll([Buffer.from(text)], true);
      expect(d.rs.usage).toEqual(want);
      expect(d.rs.events).toBe(52);
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      spy.mockRestore();
    }
  });

  it('a caller may refill and push the same Buffer object again', () => {
    const rs = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: true });
    // Both payloads padded to one length with a comment event, so one Buffer carries both.
    const a = `data: {"usage":null}\n\ndata: ${JSON.stringify(bodies[0])}\n\n`;
    const b = `data: ${JSON.stringify(usageBody)}\n\ndata: [DONE]\n\n`;
    const n = Math.max(a.length, b.length) + 4;
    const pad = (t: string) => `${t}:${' '.repeat(n - t.length - 3)}\n\n`;
    const buf = Buffer.from(pad(a));
    expect(rs.push(buf, false)).toBe(buf);
    buf.write(pad(b));
    expect(rs.push(buf, true).toString()).toBe(pad(b).replace(`data: ${JSON.stringify(usageBody)}\n\n`, ''));
    expect(rs.usage).toEqual(want);
  });

  it('the model comes from the first chunk when no usage event arrives', () => {
    const d = pushAll([Buffer.from(`: ka\n\ndata: [DONE]\n\ndata: ${JSON.stringify(bodies[0])}\n\n`)], false);
    expect(d.rs.model).toBe(model);
    expect(d.rs.usage).toBeUndefined();
    expect(d.rs.events).toBe(2);
  });

  it('malformed events: counted, forwarded byte for byte, never thrown', () => {
    const bad1 = 'data: {"model": "x", oops\n\n'; // first data event: parsed for the model
    const good = `data: ${JSON.stringify(bodies[0])}\n\n`; // parsed for the model too: bad1 gave none
    const bad2 = 'data: {"usage": {"prompt_tokens": 1,\n\n'; // can carry usage: parsed
    const bad3 = 'data: {not json at all}\n\n'; // neither, model known: only counted as an event
    const kept = `${bad1}${good}${bad2}${bad3}`;
    const text = `${kept}data: ${JSON.stringify(usageBody)}\n\ndata: [DONE]\n\n`;
    const bytes = Buffer.from(text);
    for (let i = 0; i <= bytes.length; i++) {
      const d = pushAll(at(bytes, [i]), true);
      expect(d.out.toString()).toBe(`${kept}data: [DONE]\n\n`);
      expect([d.rs.events, d.rs.malformed]).toEqual([6, 2]);
      expect(d.rs.usage).toEqual(want);
      expect(d.rs.model).toBe(model);
    }
  });

  it('an event over the hold limit streams through uninspected, and the usage event is still withheld', () => {
    const big = `data: ${JSON.stringify({ ...head, choices: choice({ content: 'z'.repeat(5000) }), usage: null })}\n\n`;
    const usageEvent = `data: ${JSON.stringify(usageBody)}\n\n`;
    const text = `${big}${usageEvent}data: [DONE]\n\n`;
    const bytes = Buffer.from(text);
    const rs = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: true, maxEventBytes: 1024 });
    const out: Buffer[] = [];
    let maxOut = 0;
    for (let i = 0; i < bytes.length; i += 100) {
      const r = rs.push(bytes.subarray(i, i + 100), i + 100 >= bytes.length);
      maxOut = Math.max(maxOut, r.length);
      out.push(r);
    }
    expect(Buffer.concat(out).toString()).toBe(`${big}data: [DONE]\n\n`);
    expect(maxOut).toBeLessThanOrEqual(1024 + 100);
    expect(rs.usage).toEqual(want);
    expect(rs.events).toBe(3);
  });
});

describe('exact bytes (Ollama NDJSON)', () => {
  const line = (o: unknown) => `${JSON.stringify(o)}\n`;
  const pieces = ['héllo', ' 世界', ' 🙂'];
  const at = '2024-11-22T00:00:00Z';
  const chunks = pieces.map((c) =>
    line({ model: 'llama3.2', created_at: at, message: { role: 'assistant', content: c }, done: false }),
  );
  const generated = pieces.map((c) => line({ model: 'llama3.2', created_at: at, response: c, done: false }));
  const last = {
    model: 'llama3.2',
    created_at: '2024-11-22T00:00:01Z',
    message: { role: 'assistant', content: '' },
    done_reason: 'stop',
    done: true,
    total_duration: 4883583458,
    load_duration: 1334875,
    prompt_eval_count: 26,
    prompt_eval_duration: 342546000,
    eval_count: 282,
    eval_duration: 4535599000,
  };
  const want = { inputTokens: 26, outputTokens: 282, totalTokens: 308, source: 'upstream' };

  for (const [name, text] of [
    ['chat', chunks.join('') + line(last)],
    [
      'generate, last line without newline',
      generated.join('') + JSON.stringify({ ...last, message: undefined, response: '' }),
    ],
  ] as const) {
    it(`${name}: usage from the done line at every split and byte by byte, same Buffers back`, () => {
      const bytes = Buffer.from(text);
      const splits: Buffer[][] = [];
      for (let i = 0; i <= bytes.length; i++) splits.push([bytes.subarray(0, i), bytes.subarray(i)]);
      splits.push(Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)));
      for (const parts of splits) {
        // dropUsageEvent is meaningless for Ollama: nothing is ever withheld.
        const rs = createResponseStream({ format: 'ndjson', kind: 'ollama.chat', dropUsageEvent: true });
        for (let i = 0; i < parts.length; i++) expect(rs.push(parts[i]!, i === parts.length - 1)).toBe(parts[i]);
        expect(rs.usage).toEqual(want);
        expect(rs.model).toBe('llama3.2');
        expect([rs.events, rs.malformed]).toEqual([4, 0]);
      }
    });
  }

  it('"done": false lines are not parsed; a malformed done line is counted', () => {
    const rs = createResponseStream({ format: 'ndjson', kind: 'ollama.generate', dropUsageEvent: false });
    rs.push(Buffer.from(`${chunks.join('')}{"model":"llama3.2","done": true, "eval_count":\n`), true);
    expect([rs.events, rs.malformed]).toEqual([4, 1]);
    expect(rs.usage).toBeUndefined();
  });
});

describe('read-only listeners with deferReadOnlyEvents: decoded after the chunk is answered', () => {
  const open = (dropUsageEvent: boolean) => {
    const seen: string[] = [];
    const rs = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent,
      readOnlyEvents: true,
      deferReadOnlyEvents: true,
      onEvent: (e) => {
        seen.push(e.usage !== undefined ? 'usage' : e.texts.map((t) => t.text).join('') || '-');
      },
    });
    return { rs, seen };
  };

  for (const drop of [false, true]) {
    it(`${drop ? 'withholding the usage event' : 'observing only'}: the bytes go out at once, the listener sees every event once, in order`, () => {
      const { rs, seen } = open(drop);
      const first = Buffer.from(role + contents[0]! + contents[1]!);
      expect(rs.push(first, false)).toBe(first);
      expect(seen).toEqual([]);
      expect(rs.deferredEvents).toBe(3);
      expect(rs.model).toBeUndefined();
      rs.flushEvents();
      expect(seen).toEqual(['-', 'héllo', ' 世界']);
      expect(rs.model).toBe('llama-3.1-8b');
      expect(rs.deferredEvents).toBe(0);

      // Not flushed: the next push hands these over before anything of its own.
      rs.push(Buffer.from(contents[2]!), false);
      expect(rs.deferredEvents).toBe(1);
      const last = Buffer.from(contents[3]! + finish + usageEv + done);
      const out = rs.push(last, true);
      // The usage event is decoded when it comes (it may be withheld), after those before it;
      // a withheld one is not the client's, so listeners do not see it (as without deferral).
      expect(seen).toEqual(['-', 'héllo', ' 世界', ' 🙂', ' done', '-', ...(drop ? [] : ['usage'])]);
      expect(rs.deferredEvents).toBe(0);
      expect(rs.usage).toMatchObject({ inputTokens: 11, outputTokens: 4 });
      expect(out.toString()).toBe(drop ? contents[3]! + finish + done : last.toString());
    });
  }

  it('at the end of the stream nothing is left deferred, with or without a usage event', () => {
    const { rs, seen } = open(false);
    const out = rs.push(Buffer.from(openaiWithoutUsage), true);
    expect(out.toString()).toBe(openaiWithoutUsage);
    expect(rs.deferredEvents).toBe(0);
    expect(seen).toEqual(['-', 'héllo', ' 世界', ' 🙂', ' done', '-']);
  });

  it.each([
    ['without the option, a read-only listener', { readOnlyEvents: true }],
    ['a listener that may change events (DLP), even with it', { readOnlyEvents: false, deferReadOnlyEvents: true }],
  ])('%s is called during push', (_who, opts) => {
    const seen: number[] = [];
    const rs = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent: false,
      ...opts,
      onEvent: () => seen.push(1),
    });
    rs.push(Buffer.from(role), false);
    expect(seen).toEqual([1]);
    expect(rs.deferredEvents).toBe(0);
  });
});
