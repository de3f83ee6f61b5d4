// Every string value of a JSON document with its byte span, found by one linear pass over bytes
// (no tree is built), and the decoding of one such string with a map from its UTF-16 units back
// to body bytes, so a finding in the decoded text becomes a splice of the exact escaped bytes.
// Input is JSON the API-shape stage (or the response reader) already validated; on anything
// else the walk throws, and the stages fail closed.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Members whose object value the model wrote (Ollama's tool-call arguments come as an object):
 * below them no name is the protocol's, so a value under `id` or `type` is text like any other,
 * and names are the model's too. */
export const FREE_KEYS: ReadonlySet<string> = new Set(['arguments']);

/** A container on the walk's stack: an object's current key, or an array's current index. */
interface Frame {
  object: boolean;
  key: string | undefined;
  index: number;
  /** Inside the value of a member named in `freeKeys`. */
  free: boolean;
}

/** Called per string value: its bytes [start, end) including the quotes, the key it is the value
 * of (in an array: the key of the array), its depth (1: a member of the top-level object), its JSON path
 * (built only when asked: `messages[0].content`), and whether it lies inside the value of a
 * member named in `freeKeys`. */
export type StringVisitor = (
  start: number,
  end: number,
  key: string | undefined,
  depth: number,
  path: () => string,
  free: boolean,
) => void;

/** Called per number inside the value of a member named in `freeKeys` (one the model wrote: a
 * card number given as a number is still someone's data): its bytes [start, end), as for
 * strings but without quotes. */
export type NumberVisitor = (
  start: number,
  end: number,
  key: string | undefined,
  depth: number,
  path: () => string,
) => void;

/** Called per member name: the name (decoded), the depth of its object (1: the top-level
 * object's), the object's JSON path (built only when asked), and whether the object lies inside
 * the value of a member named in `freeKeys`. */
export type KeyVisitor = (name: string, depth: number, path: () => string, free: boolean) => void;

/** Walk every string of the JSON value at `from`. `freeKeys` names members whose object or array
 * value is someone's free-form data throughout (Ollama's tool-call `arguments`): below them
 * visitors are told so, and a name like `id` or `type` means nothing to the protocol there. */
export function forEachJsonString(
  b: Buffer,
  from: number,
  visit: StringVisitor,
  visitKey?: KeyVisitor,
  freeKeys?: ReadonlySet<string>,
  visitFreeNumber?: NumberVisitor,
): void {
  const stack: Frame[] = [];
  const path = (): string => {
    let p = '';
    for (let k = 0; k < stack.length; k++) {
      const f = stack[k]!;
      if (!f.object) p += `[${f.index}]`;
      // An object's key names the member the next frame (or the string) is the value of.
      else if (f.key !== undefined) p += p === '' ? f.key : `.${f.key}`;
    }
    return p;
  };
  let expectKey = false;
  let i = from;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c === QUOTE) {
      const end = stringEnd(b, i);
      const top = stack[stack.length - 1];
      if (expectKey && top !== undefined) {
        const name = decodeKey(b, i, end);
        if (visitKey !== undefined) {
          // The path of the object the name belongs to, not of its previous member.
          top.key = undefined;
          visitKey(name, stack.length, path, top.free);
        }
        top.key = name;
        expectKey = false;
      } else {
        visit(i, end, top?.key, stack.length, path, top?.free === true);
      }
      i = end;
      continue;
    }
    if (c === 0x7b) {
      const top = stack[stack.length - 1];
      stack.push({ object: true, key: undefined, index: 0, free: isFree(top, freeKeys) });
      expectKey = true;
    } else if (c === 0x5b) {
      // An array's strings are reported under the key the array is the value of.
      const top = stack[stack.length - 1];
      stack.push({ object: false, key: top?.key, index: 0, free: isFree(top, freeKeys) });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top === undefined) throw new Error('json-strings: comma outside a container');
      if (top.object) expectKey = true;
      else top.index++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      // A number: its fraction and exponent bytes too.
      const start = i;
      i++;
      while (i < n && isNumberByte(b[i]!)) i++;
      const top = stack[stack.length - 1];
      if (visitFreeNumber !== undefined && top?.free === true) visitFreeNumber(start, i, top.key, stack.length, path);
      continue;
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const literal = c === 0x74 ? TRUE : c === 0x66 ? FALSE : NULL;
      if (!isAt(b, i, literal)) throw new Error('json-strings: not JSON');
      i += literal.length;
      continue;
    } else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && c !== 0x3a) {
      // Past a string, only JSON's own bytes: any other (a mislabelled answer that is not JSON)
      // would reach the client unscanned.
      throw new Error('json-strings: not JSON');
    }
    i++;
  }
  if (stack.length !== 0) throw new Error('json-strings: unterminated container');
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function isAt(b: Buffer, i: number, word: Buffer): boolean {
  if (i + word.length > b.length) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return false;
  return true;
}

/** A byte of a number after its first: digits, fraction point, exponent and its sign. */
function isNumberByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** A container opening as the current value of `parent` is free data: its parent is, or it is
 * the value of a free key (an array's elements count as its key's value, as for strings). */
function isFree(parent: Frame | undefined, freeKeys: ReadonlySet<string> | undefined): boolean {
  if (parent === undefined) return false;
  return parent.free || (freeKeys !== undefined && parent.key !== undefined && freeKeys.has(parent.key));
}

/** Offset just past the closing quote of the string opening at `start`. */
function stringEnd(b: Buffer, start: number): number {
  let i = start + 1;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i + 1;
    else i++;
  }
  throw new Error('json-strings: unterminated string');
}

/** A JSON string's text alone (quotes included in [start, end)), without decodeJsonString's map
 * of offsets: for a member name, or a value that is only read. */
export function decodeJsonText(b: Buffer, start: number, end: number): string {
  return decodeKey(b, start, end);
}

function decodeKey(b: Buffer, start: number, end: number): string {
  // A byte loop, not subarray().includes: a Buffer object per key of every body walked.
  let escaped = false;
  for (let i = start + 1; i < end - 1 && !escaped; i++) escaped = b[i] === BACKSLASH;
  return escaped ? (JSON.parse(b.toString('utf8', start, end)) as string) : b.toString('utf8', start + 1, end - 1);
}

/** A JSON string's text and where each of its UTF-16 units came from in the body. */
export interface DecodedString {
  text: string;
  /** Byte offset in the body of unit i (i === text.length: the closing quote). */
  byteAt(i: number): number;
}

/** A number's text (bytes [start, end), no quotes), as decodeJsonString gives a string's. */
export function decodeJsonNumber(b: Buffer, start: number, end: number): DecodedString {
  return { text: b.toString('latin1', start, end), byteAt: (i) => start + i };
}

/** Decode the string whose bytes (quotes included) are [start, end). The text is decoded by
 * the runtime (toString, or JSON.parse when it has escapes); the unit-to-byte map is built only
 * when asked for (a string with a finding), by one walk over its bytes. */
export function decodeJsonString(b: Buffer, start: number, end: number): DecodedString {
  const first = start + 1;
  const last = end - 1;
  let ascii = true;
  let escaped = false;
  for (let i = first; i < last; i++) {
    const c = b[i]!;
    if (c === BACKSLASH) {
      escaped = true;
      break;
    }
    if (c >= 0x80) ascii = false;
  }
  if (!escaped && ascii) {
    // ASCII without escapes (the common prompt): unit i is byte first + i.
    return { text: b.toString('latin1', first, last), byteAt: (i) => first + i };
  }
  const text = escaped ? (JSON.parse(b.toString('utf8', start, end)) as string) : b.toString('utf8', first, last);
  let map: Int32Array | undefined;
  return {
    text,
    byteAt: (k) => {
      map ??= unitOffsets(b, first, last, text.length);
      return map[k]!;
    },
  };
}

/** For each UTF-16 unit of the string in bytes [first, last), the byte where it starts; then
 * `last` (the closing quote). An escape is one unit (\uXXXX of a surrogate half too); a 4-byte
 * UTF-8 sequence is two units, both starting at its first byte. */
function unitOffsets(b: Buffer, first: number, last: number, units: number): Int32Array {
  const map = new Int32Array(units + 1);
  let n = 0;
  let i = first;
  while (i < last) {
    const c = b[i]!;
    if (c === BACKSLASH) {
      map[n++] = i;
      i += b[i + 1] === 0x75 ? 6 : 2;
    } else if (c < 0x80) {
      map[n++] = i++;
    } else if (c < 0xe0) {
      map[n++] = i;
      i += 2;
    } else if (c < 0xf0) {
      map[n++] = i;
      i += 3;
    } else {
      map[n++] = i;
      map[n++] = i;
      i += 4;
    }
  }
  map[n] = last;
  return map;
}

/** `text` as the inside of a JSON string (no quotes). */
export function encodeJsonInner(text: string): Buffer {
  const s = JSON.stringify(text);
  return Buffer.from(s.slice(1, -1));
}

const DATA_URL = Buffer.from('"data:');
const BASE64_MARK = Buffer.from(';base64,');

/** The JSON string body[start, end) (quotes included) is a base64 data URL and nothing else:
 * `data:`, a media type and parameters without spaces or escapes (but `\/`), `;base64,`, then only base64
 * characters (a JSON-escaped `\/` counts as `/`) to the closing quote. */
export function isInlineMedia(body: Buffer, start: number, end: number): boolean {
  if (end - start <= DATA_URL.length) return false;
  for (let k = 0; k < DATA_URL.length; k++) if (body[start + k] !== DATA_URL[k]) return false;
  let i = start + DATA_URL.length;
  const last = end - 1;
  // The media type and its parameters, up to the comma.
  for (; i < last && body[i] !== 0x2c; i++) {
    const b = body[i]!;
    if (b === 0x5c && body[i + 1] === 0x2f) {
      i++;
      continue;
    }
    if (b <= 0x20 || b >= 0x7f || b === 0x22 || b === 0x5c) return false;
  }
  if (i === last || i - BASE64_MARK.length + 1 < start) return false;
  for (let k = 0; k < BASE64_MARK.length; k++)
    if (body[i - BASE64_MARK.length + 1 + k] !== BASE64_MARK[k]) return false;
  for (i++; i < last; i++) {
    const b = body[i]!;
    if (b === 0x5c && body[i + 1] === 0x2f) {
      i++;
      continue;
    }
    const base64 =
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      (b >= 0x30 && b <= 0x39) ||
      b === 0x2b ||
      b === 0x2f ||
      b === 0x3d;
    if (!base64) return false;
  }
  return true;
}
