// The hash chain over the audit stream (docs/audit.md, "Tamper evidence"). Every line of the
// stream, records and checkpoints alike, starts with
//
//   {"type":"…","seq":N,"prev":"<hex SHA-256 of the previous line>",
//
// where seq counts lines from 0 over the chain's whole life (across files and restarts) and
// prev hashes the exact bytes of the previous line as written (UTF-8, without its newline); the
// chain's first line has prev GENESIS. Changing, deleting, inserting or reordering a line breaks
// a prev or a seq; rewriting the whole tail is what the signed checkpoints prevent.
//
// Records are serialised by whoever built them (a gate worker, on its own thread); the single
// writer links them here, in file order, by splicing the three fields in front of the record's
// own: no parse, no second serialisation.
import { hash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

export type LineType = 'request' | 'checkpoint' | 'break' | 'refusal_summary';

/** One-shot crypto.hash: no Hash object per line (~0.3 µs less per record than createHash). */
export function sha256Hex(line: string | Buffer): string {
  return hash('sha256', line, 'hex');
}

export interface ChainPosition {
  /** The seq the next line gets. */
  seq: number;
  /** Hash of the last line written (GENESIS before the first). */
  prev: string;
}

export class Chain implements ChainPosition {
  seq: number;
  prev: string;

  constructor(at: ChainPosition = { seq: 0, prev: GENESIS }) {
    this.seq = at.seq;
    this.prev = at.prev;
  }

  /** The head of the next line: `{"type":…,"seq":…,"prev":…` (no closing, no comma). */
  head(type: LineType): string {
    return `{"type":"${type}","seq":${this.seq},"prev":"${this.prev}"`;
  }

  /** The next line is `line` (which must start with head()): advance past it. */
  commit(line: string): string {
    this.prev = sha256Hex(line);
    this.seq++;
    return line;
  }

  /** Links one serialised JSON object (`{…}`, no newline) and advances the chain. */
  link(type: LineType, json: string): string {
    return this.commit(json.length > 2 ? `${this.head(type)},${json.slice(1)}` : `${this.head(type)}}`);
  }

  /** Links every line of `entries` as `type`, in order, and encodes them into one buffer, each
   * line newline-terminated. An entry holds one line or several, each ending in a newline except
   * perhaps the last (a record serialised on this thread comes as JSON.stringify gave it; a gate
   * worker's batch as newline-terminated lines). Each line is encoded from its head and the
   * record's own bytes after its `{`, and its hash taken from the bytes just encoded: no line is
   * ever copied whole as a string (splicing strings cost three 2 KB copies a record, ~10% of a
   * governed request's allocation). */
  encodeAll(type: LineType, entries: readonly string[]): Buffer {
    // An upper bound: every byte of the entries, and per line a head with the longest seq, its
    // comma and its newline.
    const perLine = this.head(type).length - String(this.seq).length + MAX_SEQ_DIGITS + 2;
    let size = 0;
    for (const entry of entries) size += Buffer.byteLength(entry) + perLine * lineCount(entry);
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    for (const entry of entries) {
      let start = 0;
      while (start < entry.length) {
        const nl = entry.indexOf('\n', start);
        const end = nl === -1 ? entry.length : nl;
        if (end > start) {
          const lineStart = off;
          off += buf.write(this.head(type), off, 'latin1');
          if (end - start > 2) {
            buf[off++] = COMMA;
            off += buf.write(entry.slice(start + 1, end), off, 'utf8');
          } else {
            buf[off++] = CLOSE_BRACE;
          }
          this.prev = sha256Hex(buf.subarray(lineStart, off));
          this.seq++;
          buf[off++] = NEWLINE;
        }
        if (nl === -1) break;
        start = nl + 1;
      }
    }
    return buf.subarray(0, off);
  }
}

const COMMA = 0x2c;
const CLOSE_BRACE = 0x7d;
const NEWLINE = 0x0a;
/** Digits of the largest safe integer: no chain reaches a longer seq. */
const MAX_SEQ_DIGITS = String(Number.MAX_SAFE_INTEGER).length;

/** Lines in an entry: its newlines, and one more when the last line has none. */
function lineCount(entry: string): number {
  let n = 0;
  for (let nl = entry.indexOf('\n'); nl !== -1; nl = entry.indexOf('\n', nl + 1)) n++;
  return entry.length > 0 && entry.charCodeAt(entry.length - 1) !== NEWLINE ? n + 1 : n;
}
