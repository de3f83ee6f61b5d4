// Text normalisation before matching, with a map back to raw offsets.
//
// Evasion by zero-width or bidi characters ("AKIA\u200bIOSF…") and by compatibility forms
// (full-width digits, ligatures) is undone before any detector runs: zero-width and bidi
// controls are removed and every other code point is NFKC-normalised on its own. Per code point
// (not per string) on purpose: the result for a character never depends on its neighbours, so a
// text normalises the same whole or in pieces, which the streaming contract relies on, and the
// raw span of every normalised unit is exactly one raw code point.
//
// Pure ASCII text (the common case) is returned as is, with no map and no allocation; runs that
// NFKC leaves unchanged (most text in any script) are copied with an identity map.

/** Zero-width, bidi and other invisible format characters, dropped before matching. */
function invisible(c: number): boolean {
  return (
    c === 0xad ||
    c === 0x34f ||
    c === 0x61c ||
    c === 0x115f ||
    c === 0x1160 ||
    c === 0x17b4 ||
    c === 0x17b5 ||
    (c >= 0x180b && c <= 0x180f) ||
    (c >= 0x200b && c <= 0x200f) ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2060 && c <= 0x206f) ||
    c === 0x3164 ||
    (c >= 0xfe00 && c <= 0xfe0f) ||
    c === 0xfeff ||
    c === 0xffa0 ||
    (c >= 0xe0000 && c <= 0xe007f)
  );
}
const NON_ASCII = /[\u0080-\uffff]/;

export interface Normalised {
  /** The text detectors see. */
  text: string;
  /** For each UTF-16 unit of `text`, the raw offset where its source code point starts and
   * (rawEnd) ends. Absent when text is the raw text itself. */
  rawStart?: Int32Array;
  rawEnd?: Int32Array;
  rawLength: number;
}

export function normalise(raw: string): Normalised {
  if (!NON_ASCII.test(raw)) return { text: raw, rawLength: raw.length };
  const out = new Builder(raw.length);
  let i = 0;
  while (i < raw.length) {
    // An ASCII run is copied as is.
    let j = i;
    while (j < raw.length && raw.charCodeAt(j) < 0x80) j++;
    if (j > i) {
      out.identity(raw, i, j);
      i = j;
      continue;
    }
    // A run of visible non-ASCII code points: as is when NFKC leaves it alone (most text in
    // any script), else one code point at a time.
    while (j < raw.length) {
      const c = raw.codePointAt(j)!;
      if (c < 0x80 || invisible(c)) break;
      j += c > 0xffff ? 2 : 1;
    }
    if (j === i) {
      i += raw.codePointAt(i)! > 0xffff ? 2 : 1; // invisible: dropped
      continue;
    }
    const run = raw.slice(i, j);
    if (run.normalize('NFKC') === run) out.identity(raw, i, j);
    else
      for (let k = i; k < j; ) {
        const width = raw.codePointAt(k)! > 0xffff ? 2 : 1;
        out.mapped(raw.slice(k, k + width).normalize('NFKC'), k, k + width);
        k += width;
      }
    i = j;
  }
  return out.finish(raw.length);
}

class Builder {
  private readonly parts: string[] = [];
  private starts: Int32Array;
  private ends: Int32Array;
  private n = 0;

  constructor(size: number) {
    this.starts = new Int32Array(size + 16);
    this.ends = new Int32Array(size + 16);
  }

  /** raw[from, to) unchanged: each unit maps to itself. */
  identity(raw: string, from: number, to: number): void {
    this.room(to - from);
    for (let k = from; k < to; k++) {
      this.starts[this.n] = k;
      this.ends[this.n] = k + 1;
      this.n++;
    }
    this.parts.push(raw.slice(from, to));
  }

  /** `text` stands for the one code point raw[from, to). */
  mapped(text: string, from: number, to: number): void {
    this.room(text.length);
    for (let k = 0; k < text.length; k++) {
      this.starts[this.n] = from;
      this.ends[this.n] = to;
      this.n++;
    }
    this.parts.push(text);
  }

  private room(more: number): void {
    if (this.n + more <= this.starts.length) return;
    const size = Math.max(this.starts.length * 2, this.n + more);
    const s = new Int32Array(size);
    s.set(this.starts);
    this.starts = s;
    const e = new Int32Array(size);
    e.set(this.ends);
    this.ends = e;
  }

  finish(rawLength: number): Normalised {
    return { text: this.parts.join(''), rawStart: this.starts, rawEnd: this.ends, rawLength };
  }
}

/** The raw offset where normalised offset `at` starts (at === text.length: the raw end). */
export function rawOffset(n: Normalised, at: number): number {
  if (!n.rawStart) return at;
  return at < n.text.length ? n.rawStart[at]! : n.rawLength;
}

/** The raw span of normalised [start, end): from the first unit's code point through the last's. */
export function rawSpan(n: Normalised, start: number, end: number): [number, number] {
  if (!n.rawStart) return [start, end];
  return [n.rawStart[start]!, end > start ? n.rawEnd![end - 1]! : n.rawStart[start]!];
}
