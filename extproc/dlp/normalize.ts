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
/** NON_ASCII, global, for normalise's run search (lastIndex is set before each use). */
const NEXT_NON_ASCII = new RegExp(NON_ASCII.source, 'g');

export interface Normalised {
  /** The text detectors see. */
  text: string;
  /** How `text` maps back to the raw text, absent when it is the raw text itself. */
  map?: OffsetMap;
  rawLength: number;
}

/** `text` as segments, in order: an identity segment is raw text copied unit for unit; a mapped
 * segment is the NFKC form of one raw code point. Raw text between segments was dropped
 * (invisible characters). Segments, not a per-unit table: mostly-ASCII text has a handful. */
export interface OffsetMap {
  count: number;
  /** Where each segment starts in `text`. */
  norm: Int32Array;
  /** Its raw [start, end). */
  raw: Int32Array;
  rawEnd: Int32Array;
  identity: Uint8Array;
}

export function normalise(raw: string): Normalised {
  if (!NON_ASCII.test(raw)) return { text: raw, rawLength: raw.length };
  // Text in any script with nothing to drop or replace is its own normal form: no copy, no map.
  const first = firstChange(raw);
  if (first < 0) return { text: raw, rawLength: raw.length };
  const out = new Builder();
  // What comes before the first change is copied in one piece (the loop below would have made
  // identity segments of it, which join into one).
  if (first > 0) out.identity(raw, 0, first);
  let i = first;
  const nextNonAscii = NEXT_NON_ASCII;
  while (i < raw.length) {
    // An ASCII run is copied as is; the regex engine finds its end far faster than a loop.
    nextNonAscii.lastIndex = i;
    let j = nextNonAscii.exec(raw)?.index ?? raw.length;
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

/** Where normalise first changes `raw`: the start of the first invisible character or of the
 * first run NFKC changes (a place where normalise's loop starts a step); -1 if nowhere. */
function firstChange(raw: string): number {
  let i = 0;
  while (i < raw.length) {
    NEXT_NON_ASCII.lastIndex = i;
    const m = NEXT_NON_ASCII.exec(raw);
    if (m === null) return -1;
    i = m.index;
    let j = i;
    while (j < raw.length) {
      const c = raw.codePointAt(j)!;
      if (c < 0x80 || invisible(c)) break;
      j += c > 0xffff ? 2 : 1;
    }
    if (j === i) return i;
    const run = raw.slice(i, j);
    if (run.normalize('NFKC') !== run) return i;
    i = j;
  }
  return -1;
}

class Builder {
  private readonly parts: string[] = [];
  private map: OffsetMap = {
    count: 0,
    norm: new Int32Array(16),
    raw: new Int32Array(16),
    rawEnd: new Int32Array(16),
    identity: new Uint8Array(16),
  };
  private n = 0;

  /** raw[from, to) unchanged. */
  identity(raw: string, from: number, to: number): void {
    const m = this.map;
    const last = m.count - 1;
    // Joins the previous segment when it is identity and ends where this starts.
    if (last >= 0 && m.identity[last] === 1 && m.rawEnd[last] === from) m.rawEnd[last] = to;
    else this.segment(from, to, 1);
    this.n += to - from;
    this.parts.push(raw.slice(from, to));
  }

  /** `text` stands for the one code point raw[from, to). */
  mapped(text: string, from: number, to: number): void {
    if (text.length === 0) return;
    this.segment(from, to, 0);
    this.n += text.length;
    this.parts.push(text);
  }

  private segment(from: number, to: number, identity: number): void {
    let m = this.map;
    if (m.count === m.norm.length) {
      const size = m.count * 2;
      const grow = <T extends Int32Array | Uint8Array>(a: T, b: T): T => {
        b.set(a);
        return b;
      };
      m = this.map = {
        count: m.count,
        norm: grow(m.norm, new Int32Array(size)),
        raw: grow(m.raw, new Int32Array(size)),
        rawEnd: grow(m.rawEnd, new Int32Array(size)),
        identity: grow(m.identity, new Uint8Array(size)),
      };
    }
    m.norm[m.count] = this.n;
    m.raw[m.count] = from;
    m.rawEnd[m.count] = to;
    m.identity[m.count] = identity;
    m.count++;
  }

  finish(rawLength: number): Normalised {
    return { text: this.parts.join(''), map: this.map, rawLength };
  }
}

/** The segment holding normalised offset `at` (0 <= at < text.length). */
function segmentAt(m: OffsetMap, at: number): number {
  let lo = 0;
  let hi = m.count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (m.norm[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The raw offset where the code point behind normalised offset `at` starts (at ===
 * text.length: the raw end). */
export function rawOffset(n: Normalised, at: number): number {
  const m = n.map;
  if (!m) return at;
  if (at >= n.text.length) return n.rawLength;
  const s = segmentAt(m, at);
  return m.identity[s] ? m.raw[s]! + (at - m.norm[s]!) : m.raw[s]!;
}

/** The raw span of normalised [start, end): from the first unit's code point through the last's. */
export function rawSpan(n: Normalised, start: number, end: number): [number, number] {
  const m = n.map;
  if (!m) return [start, end];
  const from = rawOffset(n, start);
  if (end <= start) return [from, from];
  const s = segmentAt(m, end - 1);
  return [from, m.identity[s] ? m.raw[s]! + (end - 1 - m.norm[s]!) + 1 : m.rawEnd[s]!];
}

/** The first normalised offset whose raw offset is at or after raw `at`. */
export function normalisedIndex(n: Normalised, at: number): number {
  const m = n.map;
  if (!m) return at;
  // The first segment that ends after `at`.
  let lo = 0;
  let hi = m.count;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (m.rawEnd[mid]! <= at) lo = mid + 1;
    else hi = mid;
  }
  if (lo === m.count) return n.text.length;
  if (at <= m.raw[lo]!) return m.norm[lo]!;
  if (m.identity[lo]) return m.norm[lo]! + (at - m.raw[lo]!);
  // Inside one mapped code point (a split surrogate pair): the next segment.
  return lo + 1 < m.count ? m.norm[lo + 1]! : n.text.length;
}
