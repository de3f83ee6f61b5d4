import { describe, expect, it } from 'vitest';
import { normalise, normalisedIndex, rawOffset, rawSpan } from './normalize.ts';

describe('normalise', () => {
  it('returns ASCII text as is, without a map', () => {
    const n = normalise('plain ascii');
    expect(n).toEqual({ text: 'plain ascii', rawLength: 11 });
    expect(rawSpan(n, 2, 5)).toEqual([2, 5]);
  });

  it('drops zero-width and bidi characters and maps spans over them', () => {
    const raw = 'x AK\u200bIA\u202eZ3 y';
    const n = normalise(raw);
    expect(n.text).toBe('x AKIAZ3 y');
    // AKIAZ3 in the normalised text spans the dropped characters inside it in the raw text.
    expect(rawSpan(n, 2, 8)).toEqual([2, 10]);
    expect(raw.slice(2, 10)).toBe('AK\u200bIA\u202eZ3');
    expect(rawOffset(n, n.text.length)).toBe(raw.length);
  });

  it('applies NFKC per code point: full-width digits, ligatures, and maps each back to its one raw code point', () => {
    const raw = '５３６ ﬁle ①';
    const n = normalise(raw);
    expect(n.text).toBe('536 file 1');
    expect(rawSpan(n, 0, 3)).toEqual([0, 3]);
    // "fi" is two normalised units from one raw character.
    expect(rawSpan(n, 4, 5)).toEqual([4, 5]);
    expect(rawSpan(n, 5, 6)).toEqual([4, 5]);
    expect(rawSpan(n, 4, 8)).toEqual([4, 7]);
  });

  it('keeps text NFKC leaves alone (CJK, emoji) as it is, surrogate pairs included', () => {
    const raw = '😀 中文 a@b.co 😀';
    const n = normalise(raw);
    expect(n.text).toBe(raw);
    const at = raw.indexOf('a@b.co');
    expect(rawSpan(n, at, at + 6)).toEqual([at, at + 6]);
    // Nothing changed: the raw string itself, no copy and no map.
    expect(n).toEqual({ text: raw, rawLength: raw.length });
  });

  it('maps the same whether the first change comes first, late, or after unchanged runs', () => {
    const tail = 'x ５ AK\u200bIA';
    for (const head of ['', 'abc ', 'é 中文 ', '😀'.repeat(3)]) {
      const raw = head + tail;
      const n = normalise(raw);
      expect(n.text).toBe(`${head}x 5 AKIA`);
      for (let a = 0; a <= n.text.length; a++)
        for (let b = a; b <= n.text.length; b++) {
          const [from, to] = rawSpan(n, a, b);
          // Each span covers exactly the raw code points behind it (the dropped one inside).
          expect(normalise(raw.slice(from, to)).text).toBe(n.text.slice(a, b));
        }
    }
  });

  it('does not compose across code points, so a text normalises the same in pieces', () => {
    const raw = 'e\u0301 ﬁ\u200b５';
    const whole = normalise(raw).text;
    for (let at = 0; at <= raw.length; at++) {
      const [a, b] = [raw.slice(0, at), raw.slice(at)];
      // Splitting inside a surrogate pair is the stream's concern; none here.
      expect(normalise(a).text + normalise(b).text).toBe(whole);
    }
  });

  it('normalisedIndex finds the first normalised offset at or after a raw offset', () => {
    const raw = 'ab\u200b\u200bcd ﬁ!';
    const n = normalise(raw);
    expect(n.text).toBe('abcd fi!');
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((r) => normalisedIndex(n, r))).toEqual([0, 1, 2, 2, 2, 3, 4, 5, 7, 8]);
  });
});
