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

  /** Links every line of `lines` (each newline-terminated) as `type`; returns them the same
   * way, newline-terminated. */
  linkAll(type: LineType, lines: string): string {
    let out = '';
    let start = 0;
    for (let nl = lines.indexOf('\n'); nl !== -1; nl = lines.indexOf('\n', start)) {
      out += `${this.link(type, lines.slice(start, nl))}\n`;
      start = nl + 1;
    }
    return out;
  }
}
