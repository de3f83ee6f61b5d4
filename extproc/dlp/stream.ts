// Scanning a text that arrives in pieces (a streamed response, a body read in chunks) with the
// same result as scanning it whole, while holding back as little as possible.
//
// The contract. A DlpStream is fed the text in order (push) and told when it ends (end). Each
// call returns `decided`, an absolute offset (UTF-16 units since the start of the stream) that
// never decreases, and the findings newly decided, all lying in [previous decided, decided).
// The caller may release the text before `decided` (after applying those findings' actions)
// and must hold the rest. Invariant, for every way of splitting a text into pushes: the
// findings returned, together, equal scanner.scan(text) — so the joined output of a redacting
// stream equals the redacted whole text and no byte of a match is released before the match is
// decided. stream.test.ts proves it for every split position of a set of texts.
//
// What is held (the tail of the buffer that could still be, or be the start of, an unfinished
// match), the earliest of:
// - the trailing run of non-whitespace characters, at most as long as the longest
//   whitespace-free match (tokens, keys, e-mails, URLs, JWTs: every detector but those below);
// - a trailing run of digit groups and their separators (cards, phones, IBANs, SSNs, NHS
//   numbers may contain spaces);
// - from a date-of-birth keyword in the last 96 characters (its date may still be coming);
// - from a PEM private key's BEGIN line with no END line yet, or a BEGIN line not yet complete:
//   held until the END line; past maxBlockChars the stream fails closed (DlpStreamOverflow);
// - the last maxLength characters when the policy has custom patterns (their shape is unknown);
// - a trailing lone high surrogate (the pair is split across pushes);
// and never a decided finding's span cut in two: the cut moves back to its start.
// Already released text is kept (retain characters) and re-scanned with what follows, so
// context words, keyword prefixes and lookbehinds see what a whole scan sees.
import { type DetectorEnv, DOB_KEYWORDS, nextPemEnd, PEM_BEGIN } from './detectors.ts';
import { normalise, normalisedIndex, rawOffset } from './normalize.ts';
import { type Candidate, resolveOverlaps, toFinding } from './resolve.ts';
import type { Scanner } from './scanner.ts';
import type { Finding } from './types.ts';

export interface StreamStep {
  /** Text before this absolute offset is decided and may be released. */
  decided: number;
  /** Findings decided by this call, absolute offsets, in order. */
  findings: Finding[];
}

/** A private key (or other unbounded secret) held past maxBlockChars: the stream must end
 * without releasing it. */
export class DlpStreamOverflow extends Error {
  readonly held: number;
  constructor(held: number) {
    super(`DLP hold-back exceeded ${held} characters waiting for the end of a private key`);
    this.name = 'DlpStreamOverflow';
    this.held = held;
  }
}

/** Digit groups and the separators between them, ending the text. */
const DIGIT_TAIL = /[+(]?[0-9A-Z](?:[0-9A-Z]|[ .()/-]{1,2}(?=[0-9A-Z(+]))*[ .()/-]{0,2}$/;
const DIGIT_TAIL_SPAN = 96;
const DOB_KEY = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${DOB_KEYWORDS})`, 'giu');
const DOB_TAIL_SPAN = 96;
/** Longer than the longest DOB keyword ("fecha de nacimiento"). */
const DOB_KEYWORD_MAX = 32;
const PEM_PRIVATE_HEADER = new RegExp(`^${PEM_BEGIN.source}`);
const PEM_END_LINE = /-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/;

function isSpace(c: number): boolean {
  return (
    c <= 32 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

const NONE: Finding[] = [];

export class DlpStream {
  /** Raw text from absolute offset `base`: released text kept for context, then held text. */
  private buf = '';
  private base = 0;
  private decidedAt = 0;
  /** An open private key is being held: re-scan only when a chunk could complete its END line. */
  private pemOpen = false;
  private ended = false;

  private readonly scanner: Scanner;

  constructor(scanner: Scanner) {
    this.scanner = scanner;
  }

  /** Characters held back now. */
  get held(): number {
    return this.base + this.buf.length - this.decidedAt;
  }

  push(chunk: string): StreamStep {
    if (this.ended) throw new Error('DlpStream: push after end');
    this.buf += chunk;
    // While a private key is open only its END line can change anything: look for one in the
    // new text (and the line-length before it), not by re-scanning all that is held.
    if (this.pemOpen && !PEM_END_LINE.test(normalise(this.buf.slice(-(chunk.length + 64))).text)) {
      this.checkCap();
      return { decided: this.decidedAt, findings: NONE };
    }
    return this.step(false);
  }

  end(): StreamStep {
    if (this.ended) throw new Error('DlpStream: end called twice');
    this.ended = true;
    return this.step(true);
  }

  /** Only an open private key can be held without bound; every other hold is bounded by the
   * longest match of its detector. */
  private checkCap(): void {
    if (this.pemOpen && this.held > this.scanner.bounds.maxBlockChars)
      throw new DlpStreamOverflow(this.scanner.bounds.maxBlockChars);
  }

  private step(final: boolean): StreamStep {
    const n = normalise(this.buf);
    const text = n.text;
    const fromN = normalisedIndex(n, this.decidedAt - this.base);
    const candidates = this.scanner.collect(text, fromN);
    let cut = final ? text.length : this.tailStart(text, fromN);
    // Never cut a decided entity in two: hold it whole.
    for (let moved = true; moved; ) {
      moved = false;
      for (const c of candidates)
        if (c.start < cut && c.end > cut) {
          cut = c.start;
          moved = true;
        }
    }
    let rawCut = final ? this.buf.length : rawOffset(n, cut);
    if (!final && rawCut === this.buf.length && rawCut > 0) {
      const last = this.buf.charCodeAt(rawCut - 1);
      if (last >= 0xd800 && last <= 0xdbff) rawCut--;
    }
    const decided: Candidate[] = [];
    for (const c of candidates) if (c.end <= cut) decided.push(c);
    const findings = resolveOverlaps(decided).map((c) => {
      const f = toFinding(n, c);
      f.start += this.base;
      f.end += this.base;
      return f;
    });
    const decidedAt = this.base + Math.max(rawCut, this.decidedAt - this.base);
    this.decidedAt = decidedAt;
    // Keep `retain` normalised characters before the cut for the next scan.
    const keepFrom = Math.max(0, cut - this.scanner.bounds.retain);
    const rawKeep = Math.min(rawOffset(n, keepFrom), rawCut);
    if (rawKeep > 0) {
      this.buf = this.buf.slice(rawKeep);
      this.base += rawKeep;
    }
    this.checkCap();
    return { decided: decidedAt, findings };
  }

  /** Where the held tail of normalised `text` starts (see the module comment). */
  private tailStart(text: string, fromN: number): number {
    const b = this.scanner.bounds;
    const len = text.length;
    let cut = len;
    // The trailing run of non-whitespace.
    const runLimit = Math.max(fromN, len - b.maxRunLength);
    let k = len;
    while (k > runLimit && !isSpace(text.charCodeAt(k - 1))) k--;
    cut = k;
    // Digit groups with spaces or other separators.
    const digitFrom = Math.max(fromN, len - DIGIT_TAIL_SPAN);
    const digits = DIGIT_TAIL.exec(text.slice(digitFrom));
    if (digits) cut = Math.min(cut, digitFrom + digits.index);
    if (b.dobEnabled) {
      // From before the decided offset too: a keyword released in an earlier piece ("…Date " |
      // "of birth 1 O") still announces a date that may be coming, so everything undecided is
      // held (the cut is never before fromN) until the span has passed.
      const from = Math.max(0, fromN - DOB_KEYWORD_MAX, len - DOB_TAIL_SPAN);
      DOB_KEY.lastIndex = from;
      let last = -1;
      for (let m = DOB_KEY.exec(text); m !== null; m = DOB_KEY.exec(text)) last = m.index;
      if (last >= 0) cut = Math.min(cut, last);
    }
    this.pemOpen = false;
    if (b.pemEnabled) {
      const open = openPem(text, fromN, this.scanner.detectorEnv);
      if (open >= 0) {
        cut = Math.min(cut, open);
        this.pemOpen = true;
      }
    }
    if (b.customTail > 0) cut = Math.min(cut, len - b.customTail);
    return Math.max(cut, fromN);
  }
}

/** Where a private key's BEGIN line without an END line starts (or an incomplete BEGIN line
 * near the end), at or after `from`; -1 if none. */
function openPem(text: string, from: number, env: DetectorEnv): number {
  let at = text.indexOf('-----BEGIN', from);
  while (at >= 0) {
    const close = text.indexOf('-----', at + 10);
    // A BEGIN line still arriving; far from the end it is just text.
    if (close < 0) return at >= text.length - 80 ? at : -1;
    if (PEM_PRIVATE_HEADER.test(text.slice(at, close + 5)) && nextPemEnd(text, close + 5, env) < 0) return at;
    at = text.indexOf('-----BEGIN', at + 10);
  }
  return -1;
}
