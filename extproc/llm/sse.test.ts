import { describe, expect, it } from 'vitest';
import { parseSseEvent, type SseEvent, SseParser } from './sse.ts';

interface Seen {
  kind: 'record' | 'part';
  raw: string;
  content: boolean;
  terminated: boolean;
  complete: boolean;
  event: SseEvent | undefined;
}

/** Feed the chunks; returns what the parser handed out and every byte it accounted for, in order. */
function run(chunks: Buffer[], maxEventBytes?: number): { seen: Seen[]; bytes: Buffer; leading: number[] } {
  const p = new SseParser({ maxEventBytes });
  const seen: Seen[] = [];
  const pieces: Buffer[] = [];
  const leading: number[] = [];
  chunks.forEach((chunk, i) => {
    p.feed(chunk, i === chunks.length - 1);
    leading.push(p.leadingBytes);
    pieces.push(chunk.subarray(0, p.leadingBytes));
    while (p.next()) {
      const raw = p.raw();
      pieces.push(Buffer.from(raw));
      seen.push({
        kind: p.kind,
        raw: raw.toString('utf8'),
        content: p.hasContent,
        terminated: p.terminated,
        complete: p.complete,
        event: p.kind === 'record' && p.hasContent ? p.event() : undefined,
      });
    }
  });
  return { seen, bytes: Buffer.concat(pieces), leading };
}

/** Split at the given offsets. */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [0, ...at, bytes.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < points.length; i++) out.push(Buffer.from(bytes.subarray(points[i]!, points[i + 1]!)));
  return out;
}
const bytewise = (bytes: Buffer): Buffer[] => Array.from({ length: bytes.length }, (_, i) => Buffer.from([bytes[i]!]));

const msg = (data: string | undefined, type = 'message', id?: string, retry?: number): SseEvent => ({
  type,
  data,
  id,
  retry,
});

describe('SseParser framing', () => {
  it('LF: events with their exact bytes', () => {
    const { seen } = run([Buffer.from('data: a\n\ndata: b\n\n')]);
    expect(seen.map((s) => [s.raw, s.event])).toEqual([
      ['data: a\n\n', msg('a')],
      ['data: b\n\n', msg('b')],
    ]);
  });

  const endings: [string, string][] = [
    ['CRLF', '\r\n'],
    ['CR', '\r'],
    ['LF', '\n'],
  ];
  for (const [name, eol] of endings) {
    it(`${name} line ends`, () => {
      const text = `data: a${eol}event: e${eol}data: b${eol}${eol}data: c${eol}${eol}`;
      const { seen, bytes } = run([Buffer.from(text)]);
      expect(seen.map((s) => [s.raw, s.event])).toEqual([
        [`data: a${eol}event: e${eol}data: b${eol}${eol}`, msg('a\nb', 'e')],
        [`data: c${eol}${eol}`, msg('c')],
      ]);
      expect(bytes.toString()).toBe(text);
    });
  }

  it('CRLF split between CR and LF inside an event: one line end', () => {
    const { seen, leading } = run([Buffer.from('data: a\r'), Buffer.from('\n\r\n')]);
    expect(seen.map((s) => s.raw)).toEqual(['data: a\r\n\r\n']);
    expect(leading).toEqual([0, 0]);
  });

  it('CRLF split after the blank line CR: the event goes out at the CR; its LF is the next chunk leading byte', () => {
    const { seen, leading } = run([Buffer.from('data: a\r\n\r'), Buffer.from('\ndata: b\r\n\r\n')]);
    expect(seen.map((s) => s.raw)).toEqual(['data: a\r\n\r', 'data: b\r\n\r\n']);
    expect(seen.map((s) => s.event?.data)).toEqual(['a', 'b']);
    expect(leading).toEqual([0, 1]);
  });

  it('a CR at the end of a chunk followed by something else: two line ends', () => {
    const { seen } = run([Buffer.from('data: a\r'), Buffer.from('\rdata: b\r\r')]);
    expect(seen.map((s) => [s.raw, s.event?.data])).toEqual([
      ['data: a\r\r', 'a'],
      ['data: b\r\r', 'b'],
    ]);
  });

  it('an empty chunk between CR and LF keeps them together', () => {
    const { seen, leading } = run([Buffer.from('data: a\n\r'), Buffer.alloc(0), Buffer.from('\ndata: b\n\n')]);
    expect(seen.map((s) => s.raw)).toEqual(['data: a\n\r', 'data: b\n\n']);
    expect(leading).toEqual([0, 0, 1]);
  });

  it('comments: keep-alive records have no content; comment lines inside events are skipped', () => {
    const { seen } = run([Buffer.from(': ping\n\ndata: x\n: note\ndata: y\n\n:\n\n')]);
    expect(seen.map((s) => [s.raw, s.content, s.event])).toEqual([
      [': ping\n\n', false, undefined],
      ['data: x\n: note\ndata: y\n\n', true, msg('x\ny')],
      [':\n\n', false, undefined],
    ]);
  });

  it('stray blank lines are records without content', () => {
    const { seen, bytes } = run([Buffer.from('\n\ndata: a\n\n\n')]);
    expect(seen.map((s) => [s.raw, s.content])).toEqual([
      ['\n', false],
      ['\n', false],
      ['data: a\n\n', true],
      ['\n', false],
    ]);
    expect(bytes.toString()).toBe('\n\ndata: a\n\n\n');
  });

  it('an event cut off by the end of the stream comes out unterminated', () => {
    const { seen } = run(cut(Buffer.from('data: a\n\ndata: b\n'), [12]));
    expect(seen.map((s) => [s.raw, s.terminated, s.event?.data])).toEqual([
      ['data: a\n\n', true, 'a'],
      ['data: b\n', false, 'b'],
    ]);
  });

  it('nothing after the last event: no extra record', () => {
    const { seen } = run([Buffer.from('data: a\n\n'), Buffer.alloc(0)]);
    expect(seen.map((s) => s.raw)).toEqual(['data: a\n\n']);
  });

  it('a leading BOM is skipped when decoding but kept in the bytes, even split', () => {
    const text = Buffer.from('\uFEFFdata: x\n\ndata: y\n\n');
    for (const at of [[], [1], [2], [1, 2], [3], [4]]) {
      const { seen, bytes } = run(cut(text, at));
      expect(
        seen.map((s) => [s.raw, s.event]),
        `cut at ${at}`,
      ).toEqual([
        ['\uFEFFdata: x\n\n', msg('x')],
        ['data: y\n\n', msg('y')],
      ]);
      expect(bytes.equals(text)).toBe(true);
    }
  });

  it('a BOM later in the stream is not skipped (it makes an unknown field)', () => {
    const { seen } = run([Buffer.from('data: a\n\n\uFEFFdata: b\n\n')]);
    expect(seen.map((s) => s.event?.data)).toEqual(['a', undefined]);
  });

  it('a BOM alone on the first line is a blank line', () => {
    const { seen } = run([Buffer.from('\uFEFF\ndata: a\n\n')]);
    expect(seen.map((s) => [s.raw, s.content])).toEqual([
      ['\uFEFF\n', false],
      ['data: a\n\n', true],
    ]);
  });

  it('bytes that only start like a BOM are content', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb]), Buffer.from('\n\ndata: a\n\n')]);
    const { seen } = run(cut(bytes, [1]));
    expect(seen.map((s) => s.content)).toEqual([true, true]);
  });

  it('multi-byte UTF-8 split at every byte decodes whole', () => {
    const text = 'data: héllo 世界 🙂\n\nevent: ünï\ndata: 🙂🙂\n\n';
    const bytes = Buffer.from(text);
    const want = [msg('héllo 世界 🙂'), msg('🙂🙂', 'ünï')];
    for (let i = 1; i < bytes.length; i++) {
      const { seen } = run(cut(bytes, [i]));
      expect(
        seen.map((s) => s.event),
        `cut at ${i}`,
      ).toEqual(want);
    }
    expect(run(bytewise(bytes)).seen.map((s) => s.event)).toEqual(want);
  });

  it('any split, any line ending: same events, every byte accounted for once', () => {
    const text =
      '\uFEFF: hello\r\n\r\nevent: start\ndata: {"a":1}\r\rdata: one\rdata:two\r\ndata\ndata:  three\n\n\n' +
      'id: 9\nretry: 1500\ndata: é世🙂\r\n\r\ndata: tail';
    const bytes = Buffer.from(text);
    const whole = run([bytes]);
    const events = whole.seen.filter((s) => s.content).map((s) => s.event);
    expect(events).toEqual([
      msg('{"a":1}', 'start'),
      msg('one\ntwo\n\n three'),
      msg('é世🙂', 'message', '9', 1500),
      msg('tail'),
    ]);
    for (let i = 0; i <= bytes.length; i++) {
      for (const chunks of [cut(bytes, [i]), cut(bytes, [Math.floor(i / 2), i])]) {
        const r = run(chunks);
        expect(
          r.seen.filter((s) => s.content).map((s) => s.event),
          `cut at ${i}`,
        ).toEqual(events);
        expect(r.bytes.equals(bytes), `cut at ${i}`).toBe(true);
      }
    }
    const r = run(bytewise(bytes));
    expect(r.seen.filter((s) => s.content).map((s) => s.event)).toEqual(events);
    expect(r.bytes.equals(bytes)).toBe(true);
  });

  it('a record inside one chunk is a view of it, not a copy', () => {
    const chunk = Buffer.from('data: a\n\ndata: b');
    const p = new SseParser();
    p.feed(chunk, false);
    expect(p.next()).toBe(true);
    expect(p.bytes).toBe(chunk);
    expect(p.carried).toBe(false);
    expect([p.start, p.end, p.chunkStart, p.chunkEnd]).toEqual([0, 9, 0, 9]);
    expect(p.next()).toBe(false);
    p.feed(Buffer.from('\n\n'), false);
    expect(p.next()).toBe(true);
    expect(p.carried).toBe(true);
    expect(p.raw().toString()).toBe('data: b\n\n');
    expect([p.chunkStart, p.chunkEnd]).toEqual([0, 2]);
  });

  it('the held tail is a copy: the caller may reuse its chunk', () => {
    const p = new SseParser();
    const chunk = Buffer.from('data: ab');
    p.feed(chunk, false);
    expect(p.next()).toBe(false);
    chunk.fill(0x78);
    p.feed(Buffer.from('c\n\n'), false);
    expect(p.next()).toBe(true);
    expect(p.event().data).toBe('abc');
  });

  it('an event longer than the hold limit passes through as parts', () => {
    const big = `data: ${'x'.repeat(100)}\n\n`;
    const text = `data: a\n\n${big}data: b\n\n`;
    const bytes = Buffer.from(text);
    const chunks = cut(
      bytes,
      Array.from({ length: Math.floor(bytes.length / 10) }, (_, i) => (i + 1) * 10),
    );
    const { seen, bytes: all } = run(chunks, 32);
    expect(all.equals(bytes)).toBe(true);
    const records = seen.filter((s) => s.kind === 'record');
    expect(records.map((s) => s.event?.data)).toEqual(['a', 'b']);
    const parts = seen.filter((s) => s.kind === 'part');
    expect(parts.map((s) => s.raw).join('')).toBe(big);
    expect(parts.map((s) => s.complete)).toEqual([...parts.slice(1).map(() => false), true]);
    // Never more than the limit (plus one chunk) held.
    expect(Math.max(...parts.map((s) => Buffer.byteLength(s.raw)))).toBeLessThanOrEqual(32 + 10);
  });
});

describe('parseSseEvent', () => {
  const table: [string, string, SseEvent][] = [
    ['data with one space stripped', 'data: x\n\n', msg('x')],
    ['data without space', 'data:x\n\n', msg('x')],
    ['only one space stripped', 'data:  x \n\n', msg(' x ')],
    ['data lines joined', 'data: a\ndata: b\n\n', msg('a\nb')],
    ['empty data line', 'data:\n\n', msg('')],
    ['field without colon', 'data\ndata\n\n', msg('\n')],
    ['no data', 'event: x\n\n', msg(undefined, 'x')],
    ['event name, last wins', 'event: a\nevent: b\ndata: 1\n\n', msg('1', 'b')],
    ['empty event name is message', 'event:\ndata: 1\n\n', msg('1')],
    ['id', 'id: 42\ndata: 1\n\n', msg('1', 'message', '42')],
    ['id with NUL ignored', 'id: a\0b\ndata: 1\n\n', msg('1')],
    ['retry digits', 'retry: 3000\ndata: 1\n\n', msg('1', 'message', undefined, 3000)],
    ['retry not digits ignored', 'retry: 3s\ndata: 1\n\n', msg('1')],
    ['unknown fields ignored', 'foo: bar\ndata: 1\n\n', msg('1')],
    ['comments ignored', ': c\ndata: 1\n:data: 2\n\n', msg('1')],
    ['colon in value kept', 'data: a:b: c\n\n', msg('a:b: c')],
    ['CRLF', 'data: a\r\ndata: b\r\n\r\n', msg('a\nb')],
    ['CR', 'data: a\rdata: b\r\r', msg('a\nb')],
    ['unterminated', 'data: a', msg('a')],
    ['case matters', 'Data: a\n\n', msg(undefined)],
  ];
  for (const [name, text, want] of table) it(name, () => expect(parseSseEvent(Buffer.from(text))).toEqual(want));

  it('hands out every line that is not a data line, as written, when asked', () => {
    const others: string[] = [];
    const e = parseSseEvent(Buffer.from(': ping\r\nevent: e\ndata: 1\nid: 7\nfoo\n:\ndata\n\n'), 0, undefined, others);
    expect(e.data).toBe('1\n');
    expect(others).toEqual([': ping', 'event: e', 'id: 7', 'foo', ':']);
  });

  it('decodes a range', () => {
    const b = Buffer.from('xxdata: é\n\nyy');
    expect(parseSseEvent(b, 2, b.length - 2).data).toBe('é');
  });
});
