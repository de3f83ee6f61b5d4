// One iterative, resumable JSON scanner and validator over bytes, used for request bodies (policy
// reads `model`, `stream`…) and for JSON response bodies read chunk by chunk (usage). It builds no
// values: it checks the text and reports where the top-level object's members are, so a caller
// decodes only the few values it needs (`JSON.parse` of one small span) instead of the document.
//
// Accepts exactly what JSON.parse accepts (RFC 8259: the four whitespace bytes, literals, numbers,
// escapes; raw control characters in strings refused), and refuses, on top of that, what would let
// the gate and the model server read the same bytes differently:
//   - nesting deeper than maxDepth (an error, never a stack overflow: nothing here recurses);
//   - invalid UTF-8 anywhere, and an object key holding an unpaired surrogate escape (Go decodes
//     both to U+FFFD, JavaScript and Python keep them);
//   - a key repeated in one object after unescaping (`"model"`, `"\u006dodel"`): JavaScript, Go
//     and Python keep the last, other parsers the first;
//   - two keys of one object equal under case folding (`model`/`MODEL`, `stream`/`ſtream`,
//     `k`/`\u212a`): Go's encoding/json matches struct fields case-insensitively.
// Errors carry a code, the JSON path (`messages[3].content`) and the byte offset, never a string
// value from the body. Cost is linear in the input: strings are skipped by a tight loop, UTF-8 is
// validated by node:buffer isUtf8, and only keys are decoded (short, and cached when repeated).
import { isUtf8 } from 'node:buffer';

export type JsonErrorCode = 'invalid_json' | 'json_too_deep' | 'duplicate_key' | 'ambiguous_key' | 'invalid_utf8';
export type JsonType = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

export interface JsonError {
  code: JsonErrorCode;
  /** What and where, without any string from the body but keys on the path (long ones cut). */
  message: string;
  /** Where it happened: '' for the top level, else e.g. `messages[3].content`. */
  path: string;
  /** Byte offset in the input (BOM included when the scanner skipped one). */
  offset: number;
}

/** A member of the top-level object: its decoded key, its value's type and the value's bytes
 * [start, end) in the input (a string's span includes its quotes). */
export interface JsonMember {
  key: string;
  type: JsonType;
  start: number;
  end: number;
}

export interface JsonScanOptions {
  /** Deepest nesting of arrays and objects accepted: `[]` is 1. Default DEFAULT_SCAN_MAX_DEPTH. */
  maxDepth?: number;
  /** Skip a UTF-8 byte order mark at offset 0. Default false. */
  allowBom?: boolean;
  /** Refuse duplicate and case-ambiguous keys in every object. Default true. When false, only
   * top-level keys are decoded (for the member callbacks), up to maxKeyBytes. */
  checkKeys?: boolean;
  /** Refuse invalid UTF-8. Default true. */
  validateUtf8?: boolean;
  /** Keep the top-level object's members in `members`. Default false. */
  collectMembers?: boolean;
  /** With checkKeys false: a top-level key longer than this is reported as undefined. Default 1 KiB. */
  maxKeyBytes?: number;
  /** A top-level member's value starts at `start` (absolute offset). */
  onMemberStart?: (key: string | undefined, type: JsonType, start: number) => void;
  /** A top-level member's value ended: its bytes are [start, end). */
  onMember?: (key: string | undefined, type: JsonType, start: number, end: number) => void;
}

export const DEFAULT_SCAN_MAX_DEPTH = 64;

export type JsonScanResult =
  | { ok: true; rootType: JsonType; rootStart: number; bomLength: 0 | 3; members: JsonMember[] }
  | { ok: false; error: JsonError };

/** Scan a whole document at once. */
export function scanJson(input: Buffer, options: JsonScanOptions = {}): JsonScanResult {
  const s = new JsonScanner(options);
  const error = s.push(input) ?? s.end();
  if (error !== undefined) return { ok: false, error };
  return { ok: true, rootType: s.rootType!, rootStart: s.rootStart, bomLength: s.bomLength, members: s.members };
}

// ---- states ----
const ST_BOM = 0;
const ST_VALUE = 1; // a value expected (after ':' or ',' in an array, or at the top)
const ST_ARRAY_FIRST = 2; // after '[': a value or ']'
const ST_OBJ_FIRST = 3; // after '{': a key or '}'
const ST_KEY = 4; // after ',' in an object: a key
const ST_COLON = 5;
const ST_AFTER = 6; // after a value inside a container: ',' or the closing bracket
const ST_DONE = 7; // after the top-level value: whitespace only
const ST_STRING = 8;
const ST_ESC = 9;
const ST_UHEX = 10;
const ST_NUM_MINUS = 11;
const ST_NUM_ZERO = 12;
const ST_NUM_INT = 13;
const ST_NUM_DOT = 14;
const ST_NUM_FRAC = 15;
const ST_NUM_E = 16;
const ST_NUM_ESIGN = 17;
const ST_NUM_EXP = 18;
const ST_LIT = 19;
const ST_FAILED = 20;

const K_ARRAY = 1;
const K_OBJECT = 2;

const T_OBJECT = 0;
const T_ARRAY = 1;
const T_STRING = 2;
const T_NUMBER = 3;
const T_BOOLEAN = 4;
const T_NULL = 5;
const TYPE_NAMES: readonly JsonType[] = ['object', 'array', 'string', 'number', 'boolean', 'null'];

const LIT_TRUE = Buffer.from('true');
const LIT_FALSE = Buffer.from('false');
const LIT_NULL = Buffer.from('null');

/** 1 for the escapes that take no digits: " \ / b f n r t. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

/** 1 for bytes that end the fast string loop: '"', '\' and control characters. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[0x22] = 1;
STRING_STOP[0x5c] = 1;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

export class JsonScanner {
  private readonly maxDepth: number;
  private readonly checkKeys: boolean;
  private readonly validateUtf8: boolean;
  private readonly maxKeyBytes: number;
  private readonly collect: boolean;
  private readonly onMemberStart: JsonScanOptions['onMemberStart'];
  private readonly onMember: JsonScanOptions['onMember'];

  private st: number;
  private depth = 0;
  /** Per depth (1-based): K_ARRAY or K_OBJECT. */
  private kinds: Uint8Array;
  /** Per depth: the index of the current array element. */
  private index: Float64Array;
  /** Per depth: the current object member's key (undefined before it is read, or not decoded). */
  private readonly keys: (string | undefined)[] = [];
  /** Per depth: the keys of the open object, only while it is open. Borrowed from a spare set
   * left by a finished scanner, so that big tables are not grown again for every document. */
  private keySets: KeySet[] = [];

  /** Absolute offset of the next byte to scan. */
  private pos = 0;
  private bomPos = 0;
  private bom: 0 | 3 = 0;
  private root: number = -1;
  private rootAt = -1;

  // The string being scanned.
  private strIsKey = false;
  private keyEscaped = false;
  /** Absolute offset of the current key's first content byte. */
  private keyStart = 0;
  /** The current key's bytes from earlier chunks (resumed scans only). */
  private keyParts: Buffer[] | undefined;
  private keyPartBytes = 0;
  private uDigits = 0;

  // The literal being matched.
  private lit: Buffer = LIT_TRUE;
  private litPos = 0;

  // The top-level member being scanned.
  private memberKey: string | undefined;
  private memberType = 0;
  private memberStart = 0;

  // An incomplete UTF-8 sequence at the end of the previous chunk (allocated when first needed:
  // a whole document in one chunk, the common case, never needs it).
  private carry: Buffer = NO_CARRY;
  private carryLen = 0;

  private err: JsonError | undefined;
  private ended = false;
  readonly members: JsonMember[] = [];

  constructor(options: JsonScanOptions = {}) {
    this.maxDepth = Math.max(1, Math.floor(options.maxDepth ?? DEFAULT_SCAN_MAX_DEPTH));
    this.checkKeys = options.checkKeys ?? true;
    this.validateUtf8 = options.validateUtf8 ?? true;
    this.maxKeyBytes = options.maxKeyBytes ?? 1024;
    this.collect = options.collectMembers ?? false;
    this.onMemberStart = options.onMemberStart;
    this.onMember = options.onMember;
    this.st = options.allowBom ? ST_BOM : ST_VALUE;
    if (this.checkKeys && spareKeySets !== undefined) {
      this.keySets = spareKeySets;
      spareKeySets = undefined;
    }
    // The per-depth arrays, like the key sets, are borrowed from the last scanner that finished
    // a document: two typed arrays (and their GC-tracked backing stores) per request add up.
    const initial = Math.min(this.maxDepth, 64) + 1;
    if (spareKinds !== undefined && spareIndex !== undefined && spareKinds.length >= initial) {
      this.kinds = spareKinds;
      this.index = spareIndex;
      spareKinds = undefined;
      spareIndex = undefined;
    } else {
      this.kinds = new Uint8Array(initial);
      this.index = new Float64Array(initial);
    }
  }

  /** The first error, if any: once failed, the scanner ignores further input. */
  get error(): JsonError | undefined {
    return this.err;
  }
  /** Bytes consumed so far. */
  get offset(): number {
    return this.pos;
  }
  /** end() was called and the input is one complete, valid JSON text. */
  get complete(): boolean {
    return this.ended && this.err === undefined;
  }
  /** The top-level value's type, known from its first byte. */
  get rootType(): JsonType | undefined {
    return this.root === -1 ? undefined : TYPE_NAMES[this.root];
  }
  /** Offset of the top-level value's first byte, -1 before it. */
  get rootStart(): number {
    return this.rootAt;
  }
  get bomLength(): 0 | 3 {
    return this.bom;
  }

  /** Scan the next chunk. Returns the error, if the document is (already) invalid. */
  push(chunk: Buffer): JsonError | undefined {
    if (this.err !== undefined || this.ended) return this.err;
    if (!this.validateUtf8) {
      this.run(chunk, 0, chunk.length);
      return this.err;
    }
    // UTF-8 is checked a sequence ahead of the scan, so that an error is reported where it
    // happens whatever the chunking: the scan stops after the first byte of an invalid sequence
    // (outside a string that byte is a syntax error, reported first), and a sequence cut by the
    // end of a chunk is carried, scanned once complete.
    let k = 0;
    if (this.carryLen > 0) {
      const need = utf8Length(this.carry[0]!);
      while (this.carryLen < need && k < chunk.length) this.carry[this.carryLen++] = chunk[k++]!;
      if (firstInvalidUtf8(this.carry, 0, this.carryLen, true) !== -1) return this.badUtf8(this.carry, 0);
      if (this.carryLen < need) return undefined;
      this.carryLen = 0;
      this.run(this.carry, 0, need);
      if (this.err !== undefined) return this.err;
    }
    const end = chunk.length;
    // An incomplete sequence at the end: a lead byte among the last three whose length runs past it.
    let tail = end;
    for (let j = end - 1; j >= k && j >= end - 3; j--) {
      const b = chunk[j]!;
      if ((b & 0xc0) === 0x80) continue;
      if (b >= 0xc0 && j + utf8Length(b) > end) tail = j;
      break;
    }
    if (k === 0 && tail === end ? !isUtf8(chunk) : !isUtf8(chunk.subarray(k, tail))) {
      const bad = firstInvalidUtf8(chunk, k, tail);
      if (bad !== -1) {
        this.run(chunk, k, bad);
        return this.err ?? this.badUtf8(chunk, bad);
      }
    }
    this.run(chunk, k, tail);
    if (this.err !== undefined || tail === end) return this.err;
    if (this.carry === NO_CARRY) this.carry = Buffer.alloc(4);
    for (let j = tail; j < end; j++) this.carry[this.carryLen++] = chunk[j]!;
    if (firstInvalidUtf8(this.carry, 0, this.carryLen, true) !== -1) return this.badUtf8(this.carry, 0);
    return undefined;
  }

  /** The end of the input. Returns the error, if the document is invalid or incomplete. */
  end(): JsonError | undefined {
    if (this.err !== undefined || this.ended) return this.err;
    this.ended = true;
    this.releaseKeys();
    if (this.carryLen > 0) return this.badUtf8(this.carry, 0);
    switch (this.st) {
      case ST_DONE:
        // A complete document: nothing reads the per-depth arrays again.
        spareKinds ??= this.kinds;
        spareIndex ??= this.index;
        return undefined;
      case ST_NUM_ZERO:
      case ST_NUM_INT:
      case ST_NUM_FRAC:
      case ST_NUM_EXP:
        if (this.depth === 0) {
          this.st = ST_DONE;
          return undefined;
        }
    }
    return this.fail('invalid_json', 'unexpected end of input', this.pos);
  }

  /** An invalid UTF-8 sequence starts at buf[at], the next byte to scan. */
  private badUtf8(buf: Buffer, at: number): JsonError {
    this.run(buf, at, at + 1);
    return this.err ?? this.fail('invalid_utf8', 'invalid UTF-8', this.pos - 1);
  }

  // ---- the state machine ----

  /** Scan buf[from, to); buf[from] is at offset this.pos. The hot paths (whitespace, string
   * contents, digits, scalars inside nested containers) stay in this loop on locals; only
   * top-level members, keys and errors call out. */
  private run(buf: Buffer, from: number, to: number): boolean {
    const base = this.pos - from;
    let i = from;
    let st = this.st;
    let depth = this.depth;
    let kinds = this.kinds;
    let top = kinds[depth]!;
    if (this.strIsKey && st >= ST_STRING && st <= ST_UHEX) this.keyStart = this.pos;
    loop: while (i < to) {
      let c = buf[i]!;
      // The structural states, in the order a document walks through them, each falling into the
      // next: after a value, a key and its colon, a value. Scalars complete within the chunk are
      // scanned inline (stringEnd, numberEnd); anything else (a token cut by the end of the chunk,
      // an error to locate) goes to the byte-at-a-time states in the switch below.
      if (st === ST_AFTER) {
        while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          if (++i === to) break loop;
          c = buf[i]!;
        }
        if (c === 0x2c) {
          if (top === K_ARRAY) {
            this.index[depth]!++;
            st = ST_VALUE;
          } else {
            this.keys[depth] = undefined;
            st = ST_KEY;
          }
          if (++i === to) break;
          c = buf[i]!;
        } else if (c === (top === K_ARRAY ? 0x5d : 0x7d)) {
          i++;
          depth--;
          top = kinds[depth]!;
          if (depth < 2) {
            this.depth = depth;
            st = this.valueEnd(base + i);
          }
          continue;
        } else
          return this.failHere(
            depth,
            'invalid_json',
            top === K_ARRAY ? "expected ',' or ']'" : "expected ',' or '}'",
            base + i,
          );
      }

      if (st === ST_KEY || st === ST_OBJ_FIRST) {
        while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          if (++i === to) break loop;
          c = buf[i]!;
        }
        if (c === 0x22) {
          const ks = i + 1;
          this.keyStart = base + ks;
          this.keyParts = undefined;
          this.keyPartBytes = 0;
          const e = stringEnd(buf, ks, to);
          if (e < 0) {
            this.strIsKey = true;
            this.keyEscaped = false;
            i = ks;
            st = ST_STRING;
            continue;
          }
          this.keyEscaped = lastStringEscaped;
          this.depth = depth;
          if (!this.keyEnd(buf, base, e - 1)) return false;
          i = e;
          st = ST_COLON;
          if (i === to) break;
          c = buf[i]!;
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === to) break loop;
            c = buf[i]!;
          }
          if (c !== 0x3a) return this.failHere(depth, 'invalid_json', "expected ':'", base + i);
          st = ST_VALUE;
          if (++i === to) break;
          c = buf[i]!;
        } else if (c === 0x7d && st === ST_OBJ_FIRST) {
          i++;
          depth--;
          top = kinds[depth]!;
          st = ST_AFTER;
          if (depth < 2) {
            this.depth = depth;
            st = this.valueEnd(base + i);
          }
          continue;
        } else
          return this.failHere(
            depth,
            'invalid_json',
            st === ST_OBJ_FIRST ? "expected a key or '}'" : 'expected a key',
            base + i,
          );
      }

      if (st === ST_VALUE || st === ST_ARRAY_FIRST) {
        while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          if (++i === to) break loop;
          c = buf[i]!;
        }
        const at = base + i;
        if (c === 0x22) {
          if (depth < 2) this.startValue(depth, T_STRING, at);
          const e = stringEnd(buf, i + 1, to);
          if (e < 0) {
            this.strIsKey = false;
            st = ST_STRING;
            i++;
            continue;
          }
          i = e;
        } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
          if (depth < 2) this.startValue(depth, T_NUMBER, at);
          const e = numberEnd(buf, i, to);
          if (e < 0) {
            st = c === 0x2d ? ST_NUM_MINUS : c === 0x30 ? ST_NUM_ZERO : ST_NUM_INT;
            i++;
            continue;
          }
          i = e;
        } else if (c === 0x7b || c === 0x5b) {
          if (depth < 2) this.startValue(depth, c === 0x7b ? T_OBJECT : T_ARRAY, at);
          if (depth === this.maxDepth)
            return this.failHere(depth, 'json_too_deep', `nested deeper than ${this.maxDepth} levels`, at);
          depth++;
          if (depth === kinds.length) kinds = this.grow();
          i++;
          if (c === 0x5b) {
            kinds[depth] = top = K_ARRAY;
            this.index[depth] = 0;
            st = ST_ARRAY_FIRST;
          } else {
            kinds[depth] = top = K_OBJECT;
            this.keys[depth] = undefined;
            if (this.checkKeys) this.resetKeys(depth);
            st = ST_OBJ_FIRST;
          }
          continue;
        } else if (c === 0x5d && st === ST_ARRAY_FIRST) {
          i++;
          depth--;
          top = kinds[depth]!;
        } else {
          const lit = c === 0x74 ? LIT_TRUE : c === 0x66 ? LIT_FALSE : c === 0x6e ? LIT_NULL : undefined;
          if (lit === undefined) return this.failHere(depth, 'invalid_json', 'expected a value', at);
          if (depth < 2) this.startValue(depth, c === 0x6e ? T_NULL : T_BOOLEAN, at);
          const n = lit.length;
          if (
            i + n <= to &&
            buf[i + 1] === lit[1] &&
            buf[i + 2] === lit[2] &&
            buf[i + 3] === lit[3] &&
            (n === 4 || buf[i + 4] === lit[4])
          )
            i += n;
          else {
            this.lit = lit;
            this.litPos = 1;
            st = ST_LIT;
            i++;
            continue;
          }
        }
        // A scalar (or an empty array) ended at i.
        st = ST_AFTER;
        if (depth < 2) {
          this.depth = depth;
          st = this.valueEnd(base + i);
        }
        continue;
      }

      switch (st) {
        case ST_STRING: {
          // Everything but '"', '\' and control bytes is content (UTF-8 is validated apart).
          let j = i;
          while (STRING_STOP[c] === 0) {
            if (++j === to) {
              i = to;
              break loop;
            }
            c = buf[j]!;
          }
          i = j + 1;
          if (c === 0x22) {
            if (this.strIsKey) {
              this.strIsKey = false;
              this.depth = depth;
              if (!this.keyEnd(buf, base, j)) return false;
              st = ST_COLON;
            } else if (depth > 1) st = ST_AFTER;
            else {
              this.depth = depth;
              st = this.valueEnd(base + i);
            }
          } else if (c === 0x5c) {
            if (this.strIsKey) this.keyEscaped = true;
            st = ST_ESC;
          } else return this.failHere(depth, 'invalid_json', 'control character in a string', base + j);
          continue;
        }

        case ST_COLON: {
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === to) break loop;
            c = buf[i]!;
          }
          if (c !== 0x3a) return this.failHere(depth, 'invalid_json', "expected ':'", base + i);
          i++;
          st = ST_VALUE;
          continue;
        }

        case ST_ESC: {
          if (SIMPLE_ESCAPE[c] === 1) st = ST_STRING;
          else if (c === 0x75) {
            this.uDigits = 0;
            st = ST_UHEX;
          } else return this.failHere(depth, 'invalid_json', 'invalid escape in a string', base + i);
          i++;
          continue;
        }

        case ST_UHEX: {
          if (!isHex(c)) return this.failHere(depth, 'invalid_json', 'invalid \\u escape in a string', base + i);
          i++;
          if (++this.uDigits === 4) st = ST_STRING;
          continue;
        }

        case ST_NUM_MINUS: {
          if (c === 0x30) st = ST_NUM_ZERO;
          else if (c >= 0x31 && c <= 0x39) st = ST_NUM_INT;
          else return this.failHere(depth, 'invalid_json', 'invalid number', base + i);
          i++;
          continue;
        }

        case ST_NUM_INT:
        case ST_NUM_FRAC:
        case ST_NUM_EXP:
        case ST_NUM_ZERO: {
          if (st !== ST_NUM_ZERO) {
            while (c >= 0x30 && c <= 0x39) {
              if (++i === to) break loop;
              c = buf[i]!;
            }
          }
          if (c === 0x2e && (st === ST_NUM_INT || st === ST_NUM_ZERO)) {
            st = ST_NUM_DOT;
            i++;
          } else if ((c === 0x65 || c === 0x45) && st !== ST_NUM_EXP) {
            st = ST_NUM_E;
            i++;
          } else if (depth > 1) {
            // The number ended before this byte, which the next state reads.
            st = ST_AFTER;
          } else {
            this.depth = depth;
            st = this.valueEnd(base + i);
          }
          continue;
        }

        case ST_NUM_DOT:
        case ST_NUM_ESIGN: {
          if (c < 0x30 || c > 0x39) return this.failHere(depth, 'invalid_json', 'invalid number', base + i);
          st = st === ST_NUM_DOT ? ST_NUM_FRAC : ST_NUM_EXP;
          i++;
          continue;
        }

        case ST_NUM_E: {
          if (c === 0x2b || c === 0x2d) st = ST_NUM_ESIGN;
          else if (c >= 0x30 && c <= 0x39) st = ST_NUM_EXP;
          else return this.failHere(depth, 'invalid_json', 'invalid number', base + i);
          i++;
          continue;
        }

        case ST_LIT: {
          if (c !== this.lit[this.litPos]) return this.failHere(depth, 'invalid_json', 'expected a value', base + i);
          i++;
          if (++this.litPos === this.lit.length) {
            if (depth > 1) st = ST_AFTER;
            else {
              this.depth = depth;
              st = this.valueEnd(base + i);
            }
          }
          continue;
        }

        case ST_DONE: {
          if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            i++;
            continue;
          }
          return this.failHere(depth, 'invalid_json', 'unexpected data after the JSON value', base + i);
        }

        case ST_BOM: {
          if (this.bomPos === 0 && c !== 0xef) {
            st = ST_VALUE;
            continue;
          }
          if (c !== BOM[this.bomPos]) return this.failHere(depth, 'invalid_json', 'expected a value', base + i);
          i++;
          if (++this.bomPos === 3) {
            this.bom = 3;
            st = ST_VALUE;
          }
          continue;
        }

        default:
          return false;
      }
    }
    this.st = st;
    this.depth = depth;
    this.pos = base + to;
    // A key cut by the end of this chunk: keep its bytes for the next one.
    if (this.strIsKey && st >= ST_STRING && st <= ST_UHEX) this.keepKeyPart(buf, base, to);
    return true;
  }

  private failHere(depth: number, code: JsonErrorCode, what: string, at: number): false {
    this.depth = depth;
    this.pos = at;
    this.failAt(code, what, at);
    return false;
  }

  /** A value's first byte, at depth 0 or 1. */
  private startValue(depth: number, type: number, at: number): void {
    if (depth === 0) {
      this.root = type;
      this.rootAt = at;
    } else if (this.kinds[1] === K_OBJECT) {
      this.memberType = type;
      this.memberStart = at;
      this.onMemberStart?.(this.memberKey, TYPE_NAMES[type]!, at);
    }
  }

  /** A value at depth 0 or 1 ended just before `end`: the state that follows. */
  private valueEnd(end: number): number {
    const d = this.depth;
    if (d === 0) return ST_DONE;
    if (d === 1 && this.kinds[1] === K_OBJECT) {
      const key = this.memberKey;
      const type = TYPE_NAMES[this.memberType]!;
      if (this.collect && key !== undefined) this.members.push({ key, type, start: this.memberStart, end });
      this.onMember?.(key, type, this.memberStart, end);
    }
    return ST_AFTER;
  }

  private grow(): Uint8Array {
    const size = Math.min(this.maxDepth + 1, this.kinds.length * 2);
    const kinds = new Uint8Array(size);
    kinds.set(this.kinds);
    this.kinds = kinds;
    const index = new Float64Array(size);
    index.set(this.index);
    this.index = index;
    return kinds;
  }

  private resetKeys(depth: number): void {
    let set = this.keySets[depth];
    if (set === undefined) {
      set = new KeySet();
      this.keySets[depth] = set;
    }
    set.reset();
  }

  private keepKeyPart(buf: Buffer, base: number, to: number): void {
    const from = this.keyStart - base;
    if (from >= to) return;
    this.keyPartBytes += to - from;
    if (!this.checkKeys && this.keyPartBytes > this.maxKeyBytes) {
      this.keyParts = undefined;
      return;
    }
    if (!this.checkKeys && this.depth !== 1) return;
    this.keyParts ??= [];
    this.keyParts.push(Buffer.from(buf.subarray(from, to)));
  }

  /** A key's closing quote is at buf[j]. Decode it where needed and check it; false when failed. */
  private keyEnd(buf: Buffer, base: number, j: number): boolean {
    const d = this.depth;
    const from = Math.max(0, this.keyStart - base);
    const whole = this.keyParts === undefined;
    if (!this.checkKeys) {
      let key: string | undefined;
      if (d === 1 && this.keyPartBytes + (j - from) <= this.maxKeyBytes)
        key =
          whole && cachedKey(buf, from, j, this.keyEscaped)
            ? keyFound
            : decodeKey(this.keyBytes(buf, from, j), this.keyEscaped);
      this.keyParts = undefined;
      this.keys[d] = key;
      if (d === 1) this.memberKey = key;
      return true;
    }
    let key: string;
    let folded: string;
    let hash: number;
    if (whole && cachedKey(buf, from, j, this.keyEscaped)) {
      key = keyFound;
      folded = foldedFound;
      hash = hashFound;
    } else {
      key = decodeKey(this.keyBytes(buf, from, j), this.keyEscaped);
      folded = foldKey(key);
      hash = hashString(folded);
    }
    this.keyParts = undefined;
    const at = base + from - this.keyPartBytes - 1;
    if (this.keyEscaped && !key.isWellFormed()) {
      this.failAt('invalid_utf8', 'a key holds an unpaired surrogate escape', at);
      return false;
    }
    this.keys[d] = key;
    if (d === 1) this.memberKey = key;
    const clash = this.keySets[d]!.add(key, folded, hash);
    if (clash === 0) return true;
    if (clash === 1) this.failAt('duplicate_key', 'duplicate key', at);
    else this.failAt('ambiguous_key', 'key differs only in letter case from another key of the same object', at);
    return false;
  }

  private keyBytes(buf: Buffer, from: number, j: number): Buffer {
    const parts = this.keyParts;
    if (parts === undefined) return buf.subarray(from, j);
    return Buffer.concat([...parts, buf.subarray(from, j)]);
  }

  private fail(code: JsonErrorCode, what: string, offset: number): JsonError {
    this.failAt(code, what, offset);
    return this.err!;
  }

  private failAt(code: JsonErrorCode, what: string, offset: number): void {
    const path = this.path();
    this.err = { code, message: `${what} at ${path === '' ? 'the top level' : path} (byte ${offset})`, path, offset };
    this.st = ST_FAILED;
    this.keyParts = undefined;
    this.releaseKeys();
  }

  /** Done with the key sets: leave them for the next scanner. */
  private releaseKeys(): void {
    const sets = this.keySets;
    if (sets.length === 0) return;
    this.keySets = [];
    for (const set of sets) set?.shrink();
    spareKeySets ??= sets;
  }

  /** The JSON path of the value being scanned. */
  private path(): string {
    let s = '';
    for (let d = 1; d <= this.depth; d++) {
      if (this.kinds[d] === K_ARRAY) {
        s += `[${this.index[d]}]`;
        continue;
      }
      const key = this.keys[d];
      if (key === undefined) {
        // Before the key is read, or a key not decoded (checkKeys off).
        if (d < this.depth) s += d === 1 ? '*' : '.*';
        else break;
      } else s += pathKey(key, d === 1);
    }
    return s;
  }
}

/** Set by stringEnd: the string it scanned holds an escape. */
let lastStringEscaped = false;

/** The offset after the closing quote of a string whose content starts at i, when the string is
 * well-formed and ends before `to`; else -1 (the byte-at-a-time states take over). */
function stringEnd(buf: Buffer, i: number, to: number): number {
  let escaped = false;
  for (;;) {
    while (i < to && STRING_STOP[buf[i]!] === 0) i++;
    if (i >= to) return -1;
    const c = buf[i]!;
    if (c === 0x22) {
      lastStringEscaped = escaped;
      return i + 1;
    }
    if (c !== 0x5c || i + 1 >= to) return -1;
    escaped = true;
    const e = buf[i + 1]!;
    if (SIMPLE_ESCAPE[e] === 1) i += 2;
    else if (
      e === 0x75 &&
      i + 5 < to &&
      isHex(buf[i + 2]!) &&
      isHex(buf[i + 3]!) &&
      isHex(buf[i + 4]!) &&
      isHex(buf[i + 5]!)
    )
      i += 6;
    else return -1;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The offset after a number starting at i, when it is well-formed and ends before `to`; else -1. */
function numberEnd(buf: Buffer, i: number, to: number): number {
  if (buf[i] === 0x2d) i++;
  if (i >= to) return -1;
  let c = buf[i]!;
  if (c === 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) {
    i++;
    while (i < to && isDigit(buf[i]!)) i++;
  } else return -1;
  if (i >= to) return -1;
  c = buf[i]!;
  if (c === 0x2e) {
    if (++i >= to || !isDigit(buf[i]!)) return -1;
    while (++i < to && isDigit(buf[i]!));
    if (i >= to) return -1;
    c = buf[i]!;
  }
  if (c === 0x65 || c === 0x45) {
    if (++i >= to) return -1;
    c = buf[i]!;
    if (c === 0x2b || c === 0x2d) {
      if (++i >= to) return -1;
      c = buf[i]!;
    }
    if (!isDigit(c)) return -1;
    while (++i < to && isDigit(buf[i]!));
    if (i >= to) return -1;
  }
  return i;
}

const BOM = [0xef, 0xbb, 0xbf];

/** Length of the sequence a lead byte starts (1 for ASCII and for invalid leads). */
function utf8Length(b: number): number {
  return b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
}

/** Offset of the first invalid UTF-8 sequence in buf[from, to), or -1. With `partialOk`, a
 * valid but incomplete sequence at the end is not an error. */
export function firstInvalidUtf8(buf: Uint8Array, from: number, to: number, partialOk = false): number {
  let i = from;
  while (i < to) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 3;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 4;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k < n; k++) {
      if (i + k >= to) return partialOk ? -1 : i;
      const c = buf[i + k]!;
      if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n;
  }
  return -1;
}

// ---- keys ----

/** A key's content bytes (validated: escapes well-formed, UTF-8 valid) → its string. */
function decodeKey(raw: Buffer, escaped: boolean): string {
  if (!escaped) return raw.toString('utf8');
  return JSON.parse(`"${raw.toString('utf8')}"`) as string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;
const PATH_KEY_MAX = 32;

function pathKey(key: string, first: boolean): string {
  if (key.length <= PATH_KEY_MAX && IDENTIFIER.test(key)) return first ? key : `.${key}`;
  const cut = key.length > PATH_KEY_MAX ? `${key.slice(0, PATH_KEY_MAX)}…` : key;
  return `[${JSON.stringify(cut)}]`;
}

// Keys repeat (every message has "role" and "content"): short keys are looked up by a
// hash of their bytes in a small table of keys already decoded and folded, so that a repeated key
// allocates nothing. The table is shared by all scanners of the thread; entries are replaced.
const CACHE_SIZE = 4096;
const CACHE_KEY_MAX = 32;
const cacheBytes = new Uint8Array(CACHE_SIZE * CACHE_KEY_MAX);
const cacheLengths = new Int8Array(CACHE_SIZE).fill(-1);
const cacheKeys: string[] = new Array(CACHE_SIZE).fill('');
const cacheFolded: string[] = new Array(CACHE_SIZE).fill('');
const cacheHashes = new Int32Array(CACHE_SIZE);
// cachedKey's results (module-level, so that the lookup allocates nothing).
let keyFound = '';
let foldedFound = '';
let hashFound = 0;

/** Decode a key's content buf[from, to) through the cache: true with keyFound, foldedFound and
 * hashFound set, or false when the key is too long for it (the caller decodes it). */
function cachedKey(buf: Buffer, from: number, to: number, escaped: boolean): boolean {
  const len = to - from;
  if (len > CACHE_KEY_MAX) return false;
  let raw = len;
  let hash = 0;
  let upper = false;
  let ascii = true;
  for (let k = from; k < to; k++) {
    let b = buf[k]!;
    raw = Math.imul(raw ^ b, 0x01000193);
    if (b >= 0x80) ascii = false;
    else if (b >= 0x41 && b <= 0x5a) {
      upper = true;
      b |= 0x20;
    }
    hash = (Math.imul(hash, 31) + b) | 0;
  }
  const slot = (raw ^ (raw >>> 15)) & (CACHE_SIZE - 1);
  const at = slot * CACHE_KEY_MAX;
  if (cacheLengths[slot] === len) {
    let k = 0;
    while (k < len && cacheBytes[at + k] === buf[from + k]) k++;
    if (k === len) {
      keyFound = cacheKeys[slot]!;
      foldedFound = cacheFolded[slot]!;
      hashFound = cacheHashes[slot]!;
      return true;
    }
  }
  if (escaped) {
    keyFound = JSON.parse(`"${buf.toString('utf8', from, to)}"`) as string;
    foldedFound = foldKey(keyFound);
    hashFound = hashString(foldedFound);
  } else if (ascii) {
    keyFound = buf.toString('latin1', from, to);
    foldedFound = upper ? keyFound.toLowerCase() : keyFound;
    hashFound = hash;
  } else {
    keyFound = buf.toString('utf8', from, to);
    foldedFound = foldKey(keyFound);
    hashFound = hashString(foldedFound);
  }
  cacheLengths[slot] = len;
  for (let k = 0; k < len; k++) cacheBytes[at + k] = buf[from + k]!;
  cacheKeys[slot] = keyFound;
  cacheFolded[slot] = foldedFound;
  cacheHashes[slot] = hashFound;
  return true;
}

/** The hash cachedKey computes over a folded ASCII key's bytes, for any folded key. */
function hashString(s: string): number {
  let hash = 0;
  for (let k = 0; k < s.length; k++) hash = (Math.imul(hash, 31) + s.charCodeAt(k)) | 0;
  return hash;
}

/** Key sets a finished scanner left for the next one (see JsonScanner.keySets). */
let spareKeySets: KeySet[] | undefined;
/** Per-depth arrays left by the last scanner that completed a document. */
let spareKinds: Uint8Array | undefined;
let spareIndex: Float64Array | undefined;
const NO_CARRY = Buffer.alloc(0);
const KEYS_KEPT = 4096;
/** Probes for one key before an object's keys move to a Map (see KeySet.map). */
const MAX_PROBES = 48;

/** Spreads a key hash over the table (the murmur3 finaliser): keys alike, as k1, k2…, would
 * otherwise fill neighbouring slots and make long probe runs. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The keys of one open object, by folded form: an open-addressing table compared by hash first
 * (V8's Map would hash every new key string again), emptied in O(1) by a generation stamp. Its
 * arrays are kept for the next object at the same depth. */
class KeySet {
  private n = 0;
  private gen = 0;
  private capacity = 16;
  private gens = new Int32Array(16);
  private hashes = new Int32Array(16);
  // Holey: a slot is read only when its generation is current.
  private folded: string[] = new Array<string>(16);
  private exact: string[] = new Array<string>(16);
  /** Set when probing ran long: keys crafted to collide under our (unseeded) hash. V8's Map,
   * whose string hash is seeded per process, then holds this object's keys. */
  private map: Map<string, string> | undefined;

  reset(): void {
    this.n = 0;
    this.map = undefined;
    if (++this.gen === 0x7fffffff) {
      this.gen = 1;
      this.gens.fill(0);
    }
  }

  /** Kept for reuse: no bigger than KEYS_KEPT slots. */
  shrink(): void {
    this.n = 0;
    this.map = undefined;
    if (this.capacity > KEYS_KEPT) this.resize(KEYS_KEPT, false);
  }

  /** 0: new; 1: the same key again; 2: a different key with the same folded form. */
  add(key: string, folded: string, hash: number): number {
    if (this.map !== undefined) return this.addToMap(this.map, key, folded);
    if (this.n * 2 >= this.capacity) this.resize(this.capacity * 2, true);
    const mask = this.capacity - 1;
    const gen = this.gen;
    const gens = this.gens;
    let probes = 0;
    for (let slot = mix(hash) & mask; ; slot = (slot + 1) & mask) {
      if (gens[slot] !== gen) {
        gens[slot] = gen;
        this.hashes[slot] = hash;
        this.folded[slot] = folded;
        this.exact[slot] = key;
        this.n++;
        return 0;
      }
      if (this.hashes[slot] === hash && this.folded[slot] === folded) return this.exact[slot] === key ? 1 : 2;
      if (++probes === MAX_PROBES) return this.addToMap(this.toMap(), key, folded);
    }
  }

  private addToMap(map: Map<string, string>, key: string, folded: string): number {
    const prev = map.get(folded);
    if (prev !== undefined) return prev === key ? 1 : 2;
    map.set(folded, key);
    return 0;
  }

  private toMap(): Map<string, string> {
    const map = new Map<string, string>();
    for (let k = 0; k < this.capacity; k++) if (this.gens[k] === this.gen) map.set(this.folded[k]!, this.exact[k]!);
    this.map = map;
    return map;
  }

  private resize(capacity: number, keep: boolean): void {
    const { gens, hashes, folded, exact, gen } = this;
    const old = this.capacity;
    this.capacity = capacity;
    this.gens = new Int32Array(capacity);
    this.hashes = new Int32Array(capacity);
    this.folded = new Array<string>(capacity);
    this.exact = new Array<string>(capacity);
    if (!keep) return;
    const mask = capacity - 1;
    for (let k = 0; k < old; k++) {
      if (gens[k] !== gen) continue;
      const hash = hashes[k]!;
      let slot = mix(hash) & mask;
      while (this.gens[slot] === gen) slot = (slot + 1) & mask;
      this.gens[slot] = gen;
      this.hashes[slot] = hash;
      this.folded[slot] = folded[k]!;
      this.exact[slot] = exact[k]!;
    }
  }
}

// ---- case folding ----
//
// Go's encoding/json matches a key to a struct field when bytes.EqualFold says they are equal:
// each code point is compared under Unicode simple case folding (the orbits of unicode.SimpleFold:
// k/K/U+212A KELVIN SIGN, s/S/U+017F LONG S, σ/ς/Σ, µ/μ/Μ, θ/ϑ/ϴ, ǆ/ǅ/Ǆ, Cherokee, Deseret…).
// foldKey maps every code point to one representative of its orbit, so that two keys fold equal
// when EqualFold holds:
//   - ASCII: A-Z → a-z (the only ASCII orbits);
//   - others: r = toLowerCase(toUpperCase(c)) (each step kept only when it yields one code point),
//     accepted only when the RegExp engine says r and c are equal under simple case folding (a /ui
//     backreference compares so), else c itself: dotless ı stays apart from i, İ from i, ß from
//     ss, as in Go;
//   - FOLD_PAIRS: ΐ/ΐ, ΰ/ΰ, ﬅ/ﬆ, the only orbits no upper/lower mapping reaches (Unicode 15.1
//     added them; folded here whether or not the Go build knows them: refusing more is safe).
// Checked against the RegExp engine for every cased code point of Node's ICU (Unicode 16 in
// Node 24): the classes are exactly its simple-case-folding classes. Differences from Go's tables
// can only concern code points added to Unicode after the Go release's version.

const CASED = /\p{Changes_When_Casemapped}/u;
/** The orbits no upper/lower mapping reaches (simple folding added by Unicode 15.1). */
const FOLD_PAIRS = new Map([
  [0x1fd3, 0x390],
  [0x1fe3, 0x3b0],
  [0xfb05, 0xfb06],
]);
/** Two code points equal under simple case folding: a /ui backreference compares them so. */
const SAME_FOLD = /^(.)\1$/isu;
/** BMP code point → its representative, 0 until computed (code points 0-0x7f never looked up). */
const bmpFold = new Uint16Array(0x10000);
const astralFold = new Map<number, number>();

function foldCodePoint(cp: number): number {
  if (cp <= 0xffff) {
    const known = bmpFold[cp]!;
    if (known !== 0) return known;
  } else {
    const known = astralFold.get(cp);
    if (known !== undefined) return known;
  }
  const ch = String.fromCodePoint(cp);
  let rep = FOLD_PAIRS.get(cp) ?? cp;
  if (rep === cp && CASED.test(ch)) {
    const upper = single(ch.toUpperCase()) ?? ch;
    const lower = single(upper.toLowerCase()) ?? upper;
    const r = lower.codePointAt(0)!;
    if (r !== cp && SAME_FOLD.test(ch + lower)) rep = r;
  }
  if (rep >= 0x41 && rep <= 0x5a) rep += 0x20;
  if (cp <= 0xffff && rep <= 0xffff) bmpFold[cp] = rep;
  // Bounded: astral code points with case are a few hundred.
  else if (astralFold.size < 4096) astralFold.set(cp, rep);
  return rep;
}

function single(s: string): string | undefined {
  const cp = s.codePointAt(0);
  return cp !== undefined && s.length === (cp > 0xffff ? 2 : 1) ? s : undefined;
}

/** The key's folded form: equal for two keys exactly when Go's EqualFold says they match. */
export function foldKey(key: string): string {
  let upper = false;
  for (let k = 0; k < key.length; k++) {
    const c = key.charCodeAt(k);
    if (c >= 0x80) return foldSlow(key);
    if (c >= 0x41 && c <= 0x5a) upper = true;
  }
  return upper ? key.toLowerCase() : key;
}

let units = new Uint16Array(256);

function foldSlow(key: string): string {
  const len = key.length;
  if (units.length < len) units = new Uint16Array(Math.max(len, units.length * 2));
  let changed = false;
  for (let k = 0; k < len; k++) {
    const c = key.charCodeAt(k);
    let f = c;
    if (c < 0x80) {
      if (c >= 0x41 && c <= 0x5a) f = c + 0x20;
    } else if (c < 0xd800 || c > 0xdfff) f = foldCodePoint(c);
    else if (c <= 0xdbff && k + 1 < len) {
      const lo = key.charCodeAt(k + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        const cp = ((c - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
        const r = foldCodePoint(cp);
        if (r !== cp) changed = true;
        // Simple case folding keeps astral code points astral.
        units[k] = 0xd800 + ((r - 0x10000) >> 10);
        units[++k] = 0xdc00 + ((r - 0x10000) & 0x3ff);
        continue;
      }
    }
    units[k] = f;
    if (f !== c) changed = true;
  }
  if (!changed) return key;
  let out = '';
  for (let k = 0; k < len; k += 8192)
    out += String.fromCharCode.apply(null, units.subarray(k, Math.min(len, k + 8192)) as unknown as number[]);
  return out;
}
