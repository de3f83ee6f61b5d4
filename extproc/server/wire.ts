// Protocol-buffer wire primitives shared by the hand-written ext_proc codecs (response-codec.ts,
// request-codec.ts, struct-codec.ts): varint sizes and writes, and tags.

/** Wire types (the low three bits of a tag). */
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const SGROUP = 3;
export const EGROUP = 4;
export const I32 = 5;

export const tag = (field: number, wireType: number): number => ((field << 3) | wireType) >>> 0;

/** Bytes of an unsigned varint holding n (0 ≤ n < 2^32). */
export function varintLen(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** A length-delimited field's size on the wire for a one-byte tag: tag, length, body. */
export const delimited = (body: number): number => 1 + varintLen(body) + body;

// int32 and int64 as protobufjs writes them (Writer.int32 / int64 with a JS number): a negative
// number is sign-extended to ten bytes; a non-negative one is written as the unsigned varint of
// its integer part (int32 truncates to 32 bits first, as `>>> 0` does).

export function int32Len(n: number): number {
  return n < 0 ? 10 : varintLen(n >>> 0);
}

export function writeInt32(buf: Buffer, pos: number, n: number): number {
  return n < 0 ? writeLongBits(buf, pos, n) : writeVarint(buf, pos, n >>> 0);
}

export function int64Len(n: number): number {
  if (n < 0) return 10;
  const lo = n >>> 0;
  const hi = ((n - lo) / 4294967296) >>> 0;
  if (hi === 0) return varintLen(lo);
  // 28 bits fit the first four bytes; each further byte carries 7 more.
  let len = 5;
  for (let h = hi >>> 3; h !== 0; h >>>= 7) len++;
  return len;
}

export function writeInt64(buf: Buffer, pos: number, n: number): number {
  if (n >= 0 && n < 4294967296) return writeVarint(buf, pos, n >>> 0);
  return writeLongBits(buf, pos, n);
}

/** protobufjs' LongBits.fromNumber + writeVarint64: low and high 32-bit words, two's complement
 * for negatives, then 7 bits a byte. */
function writeLongBits(buf: Buffer, pos: number, n: number): number {
  const sign = n < 0;
  if (sign) n = -n;
  let lo = n >>> 0;
  let hi = ((n - lo) / 4294967296) >>> 0;
  if (sign) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 4294967295) {
      lo = 0;
      if (++hi > 4294967295) hi = 0;
    }
  }
  while (hi !== 0) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}

// ---- the size list: two-pass encoding ----
// A message is encoded in two passes: the first computes the body size of every nested message
// and string, in the order the second pass writes them, into this list; the second writes each
// length prefix from it. Each size is computed once, and the bytes go into one buffer allocated
// at the end of the first pass. Encoding is synchronous and not re-entrant, so one list serves
// every call; startSizes() begins a message, endSizes() ends it and says whether the passes
// agreed.

const sizes: number[] = [];
let reserved = 0;
let consumed = 0;

export function startSizes(): void {
  reserved = 0;
  consumed = 0;
}
/** A slot for a size known only after what follows it is sized. */
export function reserve(): number {
  return reserved++;
}
export function record(slot: number, size: number): number {
  sizes[slot] = size;
  return size;
}
/** The next size, in the second pass. */
export function nextSize(): number {
  return sizes[consumed++]!;
}
/** Ends a message: whether the second pass used every size the first recorded. A list grown
 * past a usual answer's needs (a few dozen slots) by an unusually large one is let go. */
export function endSizes(): boolean {
  const ok = consumed === reserved;
  if (sizes.length > MAX_KEPT_SIZES) sizes.length = 0;
  return ok;
}
const MAX_KEPT_SIZES = 4096;

/** A string's UTF-8 byte length, recorded. ASCII, the common case (header names, metadata
 * keys), is counted without leaving JS. */
export function utf8Size(s: string): number {
  const n = s.length;
  if (n < 64) {
    let i = 0;
    while (i < n && s.charCodeAt(i) < 0x80) i++;
    if (i === n) return record(reserve(), n);
  }
  return record(reserve(), Buffer.byteLength(s, 'utf8'));
}

/** Tag, the length utf8Size recorded, and the bytes. */
export function writeString(buf: Buffer, pos: number, t: number, s: string): number {
  buf[pos++] = t;
  const len = nextSize();
  pos = writeVarint(buf, pos, len);
  // Byte length equal to the UTF-16 length only for ASCII: copied in JS, no native call.
  if (len === s.length && len < 64) {
    for (let i = 0; i < len; i++) buf[pos + i] = s.charCodeAt(i);
    return pos + len;
  }
  return pos + buf.write(s, pos, len, 'utf8');
}

/** A nested message's tag and the length its slot recorded. */
export function open(buf: Buffer, pos: number, t: number): number {
  buf[pos++] = t;
  return writeVarint(buf, pos, nextSize());
}
