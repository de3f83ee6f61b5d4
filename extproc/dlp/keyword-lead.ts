// A lead (Detector.lead) for shapes of the form `keyword … separator value`, or a bare word
// that needs no separator (`Bearer value`): where such a match can start, found without
// searching every text for the keywords. A case-insensitive keyword search stops at every
// letter a keyword starts with (a, c, s, t, p, r…), which is most of prose; separators (`:`,
// `=`) are rare there, and indexOf finds each at memchr speed. So the keywords are searched only
// in the stretch of text a keyword can stand in before each separator, and the bare word
// (a literal, which the regex engine skips through quickly) on its own.
//
// Why no match start is skipped: a keyword match at q has a separator within
// [q + minBefore, q + maxBefore]; separators are visited in order, and the window searched
// before each one starts where the previous window ended (a keyword cannot contain a
// separator), so q lies in the window of the first separator after it.

export interface KeywordLeadSpec {
  /** Every keyword a match can start with (global; case as the shape's). */
  keywords: RegExp;
  /** Where the separator can be: at least `minBefore` and at most `maxBefore` characters after
   * the start of the keyword. */
  minBefore: number;
  maxBefore: number;
  /** The first character of every separator, each one character. */
  separators: readonly string[];
  /** A word that starts a match with no separator after it (global). */
  bare: RegExp;
}

/** A factory: each scanner gets its own regexes and memo. */
export interface KeywordLead {
  seeker(): KeywordSeeker;
}

export interface KeywordSeeker {
  /** Called once per scan, before any seek in `text`: what it remembers is about that text
   * (comparing texts instead would compare whole equal texts, scan after scan). */
  prepare(text: string): void;
  seek(text: string, from: number): number;
}

/** Texts whose first SAMPLE characters hold more than DENSE separators are searched for the
 * keywords throughout, as a plain lead would: there a window per separator costs more than the
 * search it saves. Only speed depends on this choice: both ways return a position at or before
 * the next match start. */
const SAMPLE = 4096;
const DENSE = 16;

/** indexOf of one character, remembered while seeks move forward. */
class NextChar {
  private readonly char: string;
  private from = Number.POSITIVE_INFINITY;
  private at = -1;

  constructor(char: string) {
    this.char = char;
  }

  reset(): void {
    this.from = Number.POSITIVE_INFINITY;
  }

  in(text: string, from: number): number {
    if (this.from > from || (this.at >= 0 && this.at < from)) {
      this.from = from;
      this.at = text.indexOf(this.char, from);
    }
    return this.at;
  }
}

export function keywordLead(spec: KeywordLeadSpec): KeywordLead {
  return {
    seeker() {
      const keywords = new RegExp(spec.keywords.source, spec.keywords.flags);
      const bare = new RegExp(spec.bare.source, spec.bare.flags);
      const either = new RegExp(`${spec.keywords.source}|${spec.bare.source}`, spec.keywords.flags);
      const separators = spec.separators.map((c) => new NextChar(c));
      const { minBefore, maxBefore } = spec;
      // Per scan: whether its text is dense in separators, and the last bare-word search,
      // reused while it still answers (seeks come with increasing `from` within a scan).
      let dense = false;
      let bareFrom = Number.POSITIVE_INFINITY;
      let bareAt = -1;
      const nextBare = (text: string, from: number): number => {
        if (bareFrom > from || (bareAt >= 0 && bareAt < from)) {
          bare.lastIndex = from;
          bareAt = bare.exec(text)?.index ?? -1;
          bareFrom = from;
        }
        return bareAt;
      };
      const nextSeparator = (text: string, from: number): number => {
        let s = -1;
        for (const c of separators) {
          const at = c.in(text, from);
          if (at >= 0 && (s < 0 || at < s)) s = at;
        }
        return s;
      };
      const prepare = (text: string): void => {
        bareFrom = Number.POSITIVE_INFINITY;
        for (const c of separators) c.reset();
        let count = 0;
        for (let s = nextSeparator(text, 0); s >= 0 && s < SAMPLE && count <= DENSE; s = nextSeparator(text, s + 1))
          count++;
        dense = count > DENSE;
        for (const c of separators) c.reset();
      };
      const seek = (text: string, from: number): number => {
        if (dense) {
          either.lastIndex = from;
          return either.exec(text)?.index ?? -1;
        }
        const b = nextBare(text, from);
        let pos = from;
        for (;;) {
          const s = nextSeparator(text, pos + minBefore);
          // No separator left, or none before the bare word: the bare word is next, if any.
          if (s < 0 || (b >= 0 && b < s - maxBefore)) return b;
          const windowStart = Math.max(pos, s - maxBefore);
          if (s - windowStart >= minBefore) {
            keywords.lastIndex = 0;
            const k = keywords.exec(text.slice(windowStart, s));
            if (k !== null) {
              const at = windowStart + k.index;
              return b >= 0 && b < at ? b : at;
            }
          }
          // No keyword before this separator: the next window starts where this one ended
          // (a keyword starting in the last minBefore - 1 characters would reach the separator).
          pos = s - minBefore + 1;
        }
      };
      return { prepare, seek };
    },
  };
}
