// Every string value of a JSON document with its byte span, found by one linear pass over bytes
// (no tree is built), and the decoding of one such string with a map from its UTF-16 units back
// to body bytes, so a finding in the decoded text becomes a splice of the exact escaped bytes.
// Input is JSON the API-shape stage (or the response reader) already validated; on anything
// else the walk throws, and the stages fail closed.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** A container on the walk's stack: an object's current key, or an array's current index. */
interface Frame {
  object: boolean;
  key: string | undefined;
  index: number;
}

/** Called per string value: its bytes [start, end) including the quotes, the key it is the value
 * of (in an array: the key of the array), its depth (1: a member of the top-level object), and its JSON path
 * (built only when asked: `messages[0].content`). */
export type StringVisitor = (
  start: number,
  end: number,
  key: string | undefined,
  depth: number,
  path: () => string,
) => void;

export function forEachJsonString(b: Buffer, from: number, visit: StringVisitor): void {
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
        top.key = decodeKey(b, i, end);
        expectKey = false;
      } else {
        visit(i, end, top?.key, stack.length, path);
      }
      i = end;
      continue;
    }
    if (c === 0x7b) {
      stack.push({ object: true, key: undefined, index: 0 });
      expectKey = true;
    } else if (c === 0x5b) {
      // An array's strings are reported under the key the array is the value of.
      const top = stack[stack.length - 1];
      stack.push({ object: false, key: top?.key, index: 0 });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top === undefined) throw new Error('json-strings: comma outside a container');
      if (top.object) expectKey = true;
      else top.index++;
    }
    i++;
  }
  if (stack.length !== 0) throw new Error('json-strings: unterminated container');
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

function decodeKey(b: Buffer, start: number, end: number): string {
  const escaped = b.subarray(start, end).includes(BACKSLASH);
  return escaped ? (JSON.parse(b.toString('utf8', start, end)) as string) : b.toString('utf8', start + 1, end - 1);
}

/** A JSON string's text and where each of its UTF-16 units came from in the body. */
export interface DecodedString {
  text: string;
  /** Byte offset in the body of unit i (i === text.length: the closing quote). */
  byteAt(i: number): number;
}

/** Decode the string whose bytes (quotes included) are [start, end). */
export function decodeJsonString(b: Buffer, start: number, end: number): DecodedString {
  const first = start + 1;
  const last = end - 1;
  let plain = true;
  for (let i = first; i < last; i++) {
    const c = b[i]!;
    if (c === BACKSLASH || c >= 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) {
    // ASCII without escapes (the common prompt): unit i is byte first + i.
    return { text: b.toString('latin1', first, last), byteAt: (i) => first + i };
  }
  const units: string[] = [];
  const offsets: number[] = [];
  let i = first;
  while (i < last) {
    const c = b[i]!;
    if (c === BACKSLASH) {
      const e = b[i + 1]!;
      if (e === 0x75) {
        offsets.push(i);
        units.push(String.fromCharCode(Number.parseInt(b.toString('latin1', i + 2, i + 6), 16)));
        i += 6;
      } else {
        offsets.push(i);
        units.push(ESCAPES[e] ?? String.fromCharCode(e));
        i += 2;
      }
      continue;
    }
    const len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    const s = b.toString('utf8', i, i + len);
    // A 4-byte sequence is two UTF-16 units; both start at its first byte.
    for (let k = 0; k < s.length; k++) offsets.push(i);
    units.push(s);
    i += len;
  }
  offsets.push(last);
  const map = Int32Array.from(offsets);
  return { text: units.join(''), byteAt: (k) => map[k]! };
}

const ESCAPES: Record<number, string> = {
  34: '"',
  92: '\\',
  47: '/',
  98: '\b',
  102: '\f',
  110: '\n',
  114: '\r',
  116: '\t',
};

/** `text` as the inside of a JSON string (no quotes). */
export function encodeJsonInner(text: string): Buffer {
  const s = JSON.stringify(text);
  return Buffer.from(s.slice(1, -1));
}
