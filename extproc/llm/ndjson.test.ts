import { describe, expect, it } from 'vitest';
import { NdjsonParser } from './ndjson.ts';

interface Seen {
  kind: 'record' | 'part';
  raw: string;
  content: boolean;
  terminated: boolean;
  value: unknown;
}

function run(chunks: Buffer[], maxLineBytes?: number): { seen: Seen[]; bytes: Buffer } {
  const p = new NdjsonParser({ maxLineBytes });
  const seen: Seen[] = [];
  const pieces: Buffer[] = [];
  chunks.forEach((chunk, i) => {
    p.feed(chunk, i === chunks.length - 1);
    expect(p.leadingBytes).toBe(0);
    while (p.next()) {
      pieces.push(Buffer.from(p.raw()));
      seen.push({
        kind: p.kind,
        raw: p.raw().toString(),
        content: p.hasContent,
        terminated: p.terminated,
        value: p.kind === 'record' && p.hasContent ? p.value() : undefined,
      });
    }
  });
  return { seen, bytes: Buffer.concat(pieces) };
}

function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [0, ...at, bytes.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < points.length; i++) out.push(Buffer.from(bytes.subarray(points[i]!, points[i + 1]!)));
  return out;
}

describe('NdjsonParser', () => {
  it('one record per line, with its exact bytes', () => {
    const { seen } = run([Buffer.from('{"a":1}\n{"b":"é"}\n')]);
    expect(seen.map((s) => [s.raw, s.content, s.terminated, s.value])).toEqual([
      ['{"a":1}\n', true, true, { a: 1 }],
      ['{"b":"é"}\n', true, true, { b: 'é' }],
    ]);
  });

  it('blank and whitespace-only lines have no content', () => {
    const { seen } = run([Buffer.from('\n  \t\r\n{"a":1}\r\n\n')]);
    expect(seen.map((s) => [s.raw, s.content])).toEqual([
      ['\n', false],
      ['  \t\r\n', false],
      ['{"a":1}\r\n', true],
      ['\n', false],
    ]);
    expect(seen[2]!.value).toEqual({ a: 1 });
  });

  it('a CR alone does not end a line', () => {
    const { seen } = run([Buffer.from('{"a":\r1}\n')]);
    expect(seen.map((s) => s.value)).toEqual([{ a: 1 }]);
  });

  it('the last line may lack its newline', () => {
    const { seen } = run(cut(Buffer.from('{"a":1}\n{"b":2}'), [10]));
    expect(seen.map((s) => [s.raw, s.terminated, s.value])).toEqual([
      ['{"a":1}\n', true, { a: 1 }],
      ['{"b":2}', false, { b: 2 }],
    ]);
  });

  it('malformed lines: value() is undefined, never a throw', () => {
    const { seen } = run([Buffer.from('{"a":\n[1]\n')]);
    expect(seen.map((s) => s.value)).toEqual([undefined, [1]]);
  });

  it('a leading BOM is skipped when decoding', () => {
    for (const at of [[1], [2], [3], [5]]) {
      const { seen } = run(cut(Buffer.from('\uFEFF{"a":1}\n{"b":2}\n'), at));
      expect(
        seen.map((s) => s.value),
        `cut at ${at}`,
      ).toEqual([{ a: 1 }, { b: 2 }]);
      expect(seen[0]!.raw.startsWith('\uFEFF')).toBe(true);
    }
  });

  it('every split point and byte by byte: same values, every byte once', () => {
    const lines = [
      { model: 'llama3', message: { content: 'héllo 世界 🙂' }, done: false },
      { model: 'llama3', done: true, prompt_eval_count: 1, eval_count: 2 },
    ];
    const text = `${lines.map((l) => JSON.stringify(l)).join('\n\n')}\n`;
    const bytes = Buffer.from(text);
    const splits = [...Array.from({ length: bytes.length + 1 }, (_, i) => cut(bytes, [i]))];
    splits.push(Array.from({ length: bytes.length }, (_, i) => Buffer.from([bytes[i]!])));
    for (const chunks of splits) {
      const r = run(chunks);
      expect(r.seen.filter((s) => s.content).map((s) => s.value)).toEqual(lines);
      expect(r.bytes.equals(bytes)).toBe(true);
    }
  });

  it('a line longer than the hold limit passes through as parts', () => {
    const long = `${JSON.stringify({ x: 'y'.repeat(200) })}\n`;
    const bytes = Buffer.from(`{"a":1}\n${long}{"b":2}\n`);
    const chunks = cut(
      bytes,
      Array.from({ length: Math.floor(bytes.length / 16) }, (_, i) => (i + 1) * 16),
    );
    const { seen, bytes: all } = run(chunks, 40);
    expect(all.equals(bytes)).toBe(true);
    expect(seen.filter((s) => s.kind === 'record').map((s) => s.value)).toEqual([{ a: 1 }, { b: 2 }]);
    expect(
      seen
        .filter((s) => s.kind === 'part')
        .map((s) => s.raw)
        .join(''),
    ).toBe(long);
  });
});
