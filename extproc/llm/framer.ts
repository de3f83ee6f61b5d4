// Incremental framing of a byte stream into records (SSE events or NDJSON lines) as chunks
// arrive, for sse.ts and ndjson.ts. It works on bytes and never decodes: a record is handed out
// as a byte range only once it is complete, so a multi-byte UTF-8 character or a CRLF split
// across chunks is whole before anyone decodes it.
//
// Built for the proxy's hot path. It's a cursor (feed a chunk, then call next() until it returns
// false) so no callback or result object is created per record. Line ends are found with
// Buffer.indexOf, natively, and every byte is scanned once: scan state survives chunk
// boundaries, so bytes held back are never rescanned. A record that lies inside one chunk is
// described as a range of that very chunk, so no copy is made. Only the tail of a record that
// continues in the next chunk is copied and held.

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const TAB = 0x09;
const BOM = [0xef, 0xbb, 0xbf] as const;
const EMPTY = Buffer.alloc(0);

/** Bytes held for one unfinished record before giving up on holding it. A stream that never ends
 * a record (a mislabelled download, a hostile upstream) must not grow the gate's memory without
 * bound. */
export const DEFAULT_MAX_RECORD_BYTES = 1 << 20;

/** 'record': a whole record, bytes[start, end). 'part': a piece of a record that outgrew the
 * hold limit; its bytes are to be passed on uninspected, and `complete` tells whether the record
 * ends with this piece. */
export type FrameKind = 'record' | 'part';

export type FramingMode = 'sse' | 'ndjson';

export class Framer {
  /** SSE: a blank line ends a record, CR alone also ends a line. NDJSON: each LF ends one. */
  private readonly sse: boolean;
  private readonly maxHeld: number;

  // The chunk being read.
  private chunk: Buffer = EMPTY;
  private eos = false;
  /** Next byte to scan. */
  private pos = 0;
  /** Where the record in progress begins in this chunk (0 when it began in an earlier one). */
  private recStart = 0;
  /** Cached indexOf results: -1 none left in the chunk; -2 (or anything below pos) to look again. */
  private nextLF = -2;
  private nextCR = -2;
  private exhausted = true;

  // Carried across chunks.
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  /** The line in progress has bytes (SSE; a blank line is what ends an event). */
  private lineStarted = false;
  /** The line in progress is a field (SSE: not a comment) / not blank (NDJSON). */
  private lineField = false;
  private recordField = false;
  /** The last byte seen was a CR ending a line: an LF right after it is part of the same line end,
   * even when it arrives in the next chunk. */
  private crPending = false;
  /** ...and that line end also ended a record, so the LF belongs to that (already handed out) one. */
  private crEndedRecord = false;
  /** Bytes of a UTF-8 BOM matched at the very start of the stream; -1 once settled. */
  private bomMatched = 0;
  private recordBom = 0;
  /** The record in progress outgrew maxHeld: its bytes go out as parts until it ends. */
  private passing = false;

  // What next() found.
  private _kind: FrameKind = 'record';
  private _bytes: Buffer = EMPTY;
  private _start = 0;
  private _end = 0;
  private _chunkStart = 0;
  private _chunkEnd = 0;
  private _field = false;
  private _bom = 0;
  private _terminated = true;
  private _complete = true;
  private _carried = false;
  private _leading = 0;

  constructor(mode: FramingMode, maxRecordBytes: number = DEFAULT_MAX_RECORD_BYTES) {
    this.sse = mode === 'sse';
    this.maxHeld = maxRecordBytes;
  }

  /** Start reading a chunk. The chunk must not change while it is being read; bytes kept past
   * this chunk are copied. At endOfStream, whatever is unfinished comes out as a last record. */
  feed(chunk: Buffer, endOfStream: boolean): void {
    this.chunk = chunk;
    this.eos = endOfStream;
    this.pos = 0;
    this.recStart = 0;
    this.nextLF = -2;
    this.nextCR = -2;
    this.exhausted = false;
    this._leading = 0;
    if (this.crPending && chunk.length > 0) {
      this.crPending = false;
      if (chunk[0] === LF) {
        this.pos = 1;
        if (this.crEndedRecord) {
          this.recStart = 1;
          this._leading = 1;
        }
      }
    }
    if (this.bomMatched >= 0 && chunk.length > 0) this.matchBom();
  }

  /** Advance to the next record (or part) available from the fed chunk. False when the chunk is
   * used up; an unfinished record is then held for the next chunk. */
  next(): boolean {
    if (this.exhausted) return false;
    const c = this.chunk;
    for (;;) {
      const t = this.lineEnd();
      if (t === -1) return this.atChunkEnd();
      this.see(this.pos, t);
      let end = t + 1;
      let crOpen = false;
      if (c[t] === CR) {
        if (end < c.length) {
          if (c[end] === LF) end++;
        } else crOpen = !this.eos;
      }
      this.pos = end;
      const blank = !this.lineStarted;
      const field = this.lineField;
      this.lineStarted = false;
      this.lineField = false;
      this.crPending = crOpen;
      if (this.sse) {
        if (!blank) {
          if (field) this.recordField = true;
          this.crEndedRecord = false;
          continue;
        }
        this.crEndedRecord = true;
        this.emit(this.passing ? 'part' : 'record', end, this.recordField, true, true);
      } else {
        this.emit(this.passing ? 'part' : 'record', end, field, true, true);
      }
      return true;
    }
  }

  /** 'record' or 'part'. */
  get kind(): FrameKind {
    return this._kind;
  }
  /** The found bytes are bytes[start, end): the fed chunk itself, or a fresh Buffer when the
   * record began in an earlier chunk (then `carried`). */
  get bytes(): Buffer {
    return this._bytes;
  }
  get start(): number {
    return this._start;
  }
  get end(): number {
    return this._end;
  }
  /** The part of the fed chunk these bytes cover: chunk[chunkStart, chunkEnd). */
  get chunkStart(): number {
    return this._chunkStart;
  }
  get chunkEnd(): number {
    return this._chunkEnd;
  }
  /** Bytes from earlier chunks are included (bytes is then a fresh Buffer, start is 0). */
  get carried(): boolean {
    return this._carried;
  }
  /** SSE: the event has a line that is not a comment. NDJSON: the line is not blank. Records
   * without are stray blank lines or keep-alive comments: forward them, there is nothing to read. */
  get hasContent(): boolean {
    return this._field;
  }
  /** Length of the stream's UTF-8 BOM at the front of these bytes (3 or 0): skip it to decode. */
  get bomLength(): number {
    return this._bom;
  }
  /** False for a record cut off by the end of the stream (no blank line / newline after it). */
  get terminated(): boolean {
    return this._terminated;
  }
  /** For a part: whether the record ends with it. Always true for a record. */
  get complete(): boolean {
    return this._complete;
  }
  /** After feed(): 1 when the chunk starts with the LF of a CRLF that ended the previous record in
   * the previous chunk. Those bytes belong to that record and are in no record handed out now. */
  get leadingBytes(): number {
    return this._leading;
  }
  /** The found bytes as one Buffer (a view, not a copy, when they lie in the fed chunk). */
  raw(): Buffer {
    return this._bytes.subarray(this._start, this._end);
  }

  private lineEnd(): number {
    const c = this.chunk;
    const p = this.pos;
    // The blank line ending an SSE event usually follows a line end at once ("\n\n"): no native
    // call for it. The caches stay valid: a cached position at or after p is still the nearest.
    if (this.sse) {
      const b = c[p];
      if (b === LF || b === CR) return p;
    }
    let lf = this.nextLF;
    if (lf !== -1 && lf < p) lf = this.nextLF = c.indexOf(LF, p);
    if (!this.sse) return lf;
    let cr = this.nextCR;
    if (cr !== -1 && cr < p) cr = this.nextCR = c.indexOf(CR, p);
    if (lf === -1) return cr;
    if (cr === -1) return lf;
    return lf < cr ? lf : cr;
  }

  /** Account for bytes [from, to) of the line in progress (no line end among them). */
  private see(from: number, to: number): void {
    if (from >= to) return;
    const c = this.chunk;
    if (this.sse) {
      if (!this.lineStarted) {
        this.lineStarted = true;
        this.lineField = c[from] !== COLON;
      }
      return;
    }
    if (this.lineField) return;
    for (let i = from; i < to; i++) {
      const b = c[i]!;
      if (b !== SPACE && b !== TAB && b !== CR) {
        this.lineField = true;
        return;
      }
    }
  }

  private atChunkEnd(): boolean {
    const c = this.chunk;
    const len = c.length;
    this.see(this.pos, len);
    this.pos = len;
    this.exhausted = true;
    if (this.eos) {
      if (this.recStart === len && this.heldBytes === 0 && !this.passing) return false;
      const field = this.recordField || this.lineField;
      this.lineStarted = false;
      this.lineField = false;
      this.emit(this.passing ? 'part' : 'record', len, field, false, true);
      return true;
    }
    if (this.passing) {
      if (this.recStart === len) return false;
      this.emit('part', len, true, false, false);
      return true;
    }
    const rest = len - this.recStart;
    if (this.heldBytes + rest > this.maxHeld) {
      // Too long to hold: hand out what is held as a part and pass the rest through as it comes.
      this.passing = true;
      this.emit('part', len, true, false, false);
      return true;
    }
    if (rest > 0) {
      // Copied: the caller owns the chunk and may reuse it once this call returns.
      this.held.push(Buffer.from(c.subarray(this.recStart, len)));
      this.heldBytes += rest;
      this.recStart = len;
    }
    return false;
  }

  private emit(kind: FrameKind, end: number, field: boolean, terminated: boolean, complete: boolean): void {
    const c = this.chunk;
    const from = this.recStart;
    this._kind = kind;
    this._chunkStart = from;
    this._chunkEnd = end;
    this._field = field;
    this._terminated = terminated;
    this._complete = complete;
    this._bom = this.recordBom;
    this.recordBom = 0;
    if (this.heldBytes === 0) {
      this._bytes = c;
      this._start = from;
      this._end = end;
      this._carried = false;
    } else {
      if (end > from) this.held.push(c.subarray(from, end));
      const bytes = Buffer.concat(this.held, this.heldBytes + (end - from));
      this.held.length = 0;
      this.heldBytes = 0;
      this._bytes = bytes;
      this._start = 0;
      this._end = bytes.length;
      this._carried = true;
    }
    this.recStart = end;
    if (complete) {
      this.recordField = false;
      this.passing = false;
    }
  }

  /** A UTF-8 BOM opening the stream is not content (WHATWG decodes it away); it may arrive split. */
  private matchBom(): void {
    const c = this.chunk;
    let i = this.pos;
    let m = this.bomMatched;
    while (m < 3 && i < c.length && c[i] === BOM[m]) {
      i++;
      m++;
    }
    if (m === 3) {
      this.bomMatched = -1;
      this.recordBom = 3;
      this.pos = i;
    } else if (i < c.length) {
      // Not a BOM. Bytes matched in an earlier chunk are ordinary line content; any in this chunk
      // are scanned as such from pos.
      if (this.bomMatched > 0) {
        this.lineStarted = true;
        this.lineField = true;
      }
      this.bomMatched = -1;
    } else {
      this.bomMatched = m;
      this.pos = i;
    }
  }
}
