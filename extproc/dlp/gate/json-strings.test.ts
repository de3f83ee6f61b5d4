import { describe, expect, it } from 'vitest';
import { decodeJsonString, encodeJsonInner, forEachJsonString } from './json-strings.ts';

function strings(json: string) {
  const b = Buffer.from(json);
  const out: { key: string | undefined; depth: number; path: string; text: string }[] = [];
  forEachJsonString(b, 0, (s, e, key, depth, path) =>
    out.push({ key, depth, path: path(), text: decodeJsonString(b, s, e).text }),
  );
  return out;
}

describe('forEachJsonString', () => {
  it('reports every string value with its key and path, never a key', () => {
    const got = strings(
      '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{},{"content":"x"}],"stop":["a","b"]}',
    );
    expect(got).toEqual([
      { key: 'model', depth: 1, path: 'model', text: 'm' },
      { key: 'role', depth: 3, path: 'messages[0].role', text: 'user' },
      { key: 'type', depth: 5, path: 'messages[0].content[0].type', text: 'text' },
      { key: 'text', depth: 5, path: 'messages[0].content[0].text', text: 'hi' },
      { key: 'content', depth: 3, path: 'messages[2].content', text: 'x' },
      { key: 'stop', depth: 2, path: 'stop[0]', text: 'a' },
      { key: 'stop', depth: 2, path: 'stop[1]', text: 'b' },
    ]);
  });

  it('decodes keys written with escapes', () => {
    expect(strings('{"mod\\u0065l":"m","a\\\\b":"x","c\\"":"y"}').map((s) => s.key)).toEqual(['model', 'a\\b', 'c"']);
  });

  it('walks numbers and literals, and refuses every other byte outside a string (it would go unscanned)', () => {
    expect(strings('{ "a" : -1.5e+3, "b": [true, false, null, 0, 12E-2] ,"c":"x"}\r\n').map((s) => s.text)).toEqual([
      'x',
    ]);
    for (const bad of [
      '{"a": jane@x.io}',
      '{"a":1} jane',
      '{"a":truthy}',
      '{"a":nul}',
      '{"a":+1}',
      '{"a":"x"}<html>',
      '\ufeff{}',
    ])
      expect(() => strings(bad), bad).toThrow(/not JSON/);
  });

  it('is not fooled by brackets, quotes and commas inside strings, nor by empty containers', () => {
    expect(strings('{"a":"{[,\\"]}","b":[],"c":{},"d":"y"}').map((s) => [s.key, s.text])).toEqual([
      ['a', '{[,"]}'],
      ['d', 'y'],
    ]);
  });
});

describe('decodeJsonString', () => {
  const cases: [string, string][] = [
    ['plain ASCII', 'hello a@b.co'],
    ['escapes', 'line\nbreak "quoted" back\\slash tab\t'],
    ['multi-byte UTF-8', 'héllo 世界 😀 end'],
    ['unicode escapes', 'A\u00e9B'],
  ];
  for (const [name, text] of cases) {
    it(`maps every unit back to its bytes: ${name}`, () => {
      // Encode with \u escapes for the unicode case, as some clients do.
      const raw = name === 'unicode escapes' ? '"A\\u00e9B"' : JSON.stringify(text);
      const b = Buffer.from(`{"k":${raw}}`);
      const start = 5;
      const end = b.length - 1;
      const d = decodeJsonString(b, start, end);
      expect(d.text).toBe(text);
      // Any unit-aligned slice of the text is the JSON of the byte slice between its mapped ends.
      for (let i = 0; i <= text.length; i++) {
        for (let j = i; j <= text.length; j++) {
          if (/[\udc00-\udfff]/.test(text[i] ?? '') || /[\udc00-\udfff]/.test(text[j] ?? '')) continue;
          const inner = b.toString('utf8', d.byteAt(i), d.byteAt(j));
          expect(JSON.parse(`"${inner}"`)).toBe(text.slice(i, j));
        }
      }
    });
  }

  it('encodes a replacement as the inside of a JSON string', () => {
    expect(encodeJsonInner('a"b\\c\n').toString()).toBe('a\\"b\\\\c\\n');
  });
});

describe('collectHits cost', () => {
  it('is linear in the body: many short strings, none with a bracket or a data URL', async () => {
    const { collectHits } = await import('./body-scan.ts');
    const scanner = {
      scan: () => [],
      stream: () => ({ push: () => ({ decided: 0, findings: [] }), end: () => ({ decided: 0, findings: [] }) }),
    };
    const body = Buffer.from(
      JSON.stringify({ model: 'm', input: Array.from({ length: 400_000 }, () => 'plain words') }),
    );
    const t0 = performance.now();
    const hits = collectHits(body, 0, scanner, { skipModel: true, budgetMs: Infinity });
    // ~6 MB: linear work is tens of ms even on a loaded machine; a rescan of the rest of the
    // body per string is minutes.
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(hits.chars).toBe(400_000 * 11);
  });
});
