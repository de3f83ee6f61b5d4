// Server-sent events (WHATWG HTML, "Parsing an event stream"), read incrementally over Buffers.
// Events end at a blank line. Lines end with LF, CRLF or CR, and a CRLF may be split across
// chunks. A UTF-8 BOM opening the stream is ignored, and lines starting with ':' are comments.
//
// Framing (finding where each event's bytes begin and end) is separate from decoding (turning
// an event's bytes into fields), so a caller on the hot path can skip decoding events it has no
// use for and still forward them, or drop one, byte for byte.
import { DEFAULT_MAX_RECORD_BYTES, Framer } from './framer.ts';

export { DEFAULT_MAX_RECORD_BYTES, type FrameKind } from './framer.ts';

/** One event's fields, as the WHATWG algorithm would dispatch them. */
export interface SseEvent {
  /** The `event:` field, or 'message'. */
  type: string;
  /** `data:` lines joined with "\n"; undefined when the event has no data line (a browser would
   * not dispatch it). */
  data: string | undefined;
  /** The `id:` field of this event, if any (ids containing NUL are ignored, as the spec says). */
  id: string | undefined;
  /** The `retry:` field, if it is all ASCII digits. */
  retry: number | undefined;
}

/**
 * Incremental SSE framer. Per chunk:
 *
 *   parser.feed(chunk, endOfStream);
 *   while (parser.next()) { parser.raw() / parser.event() / parser.bytes, start, end … }
 *
 * Each record is one event's exact bytes, from its first line through the blank line that ends
 * it (a stray blank line or a comment-only keep-alive is a record without content). The bytes of
 * the records, plus `leadingBytes` of each chunk, add up to the stream exactly. An event still
 * unfinished at the end of a chunk is held until it completes; at end of stream it comes out
 * as it is (`terminated` false).
 */
export class SseParser extends Framer {
  constructor(opts: { maxEventBytes?: number } = {}) {
    super('sse', opts.maxEventBytes ?? DEFAULT_MAX_RECORD_BYTES);
  }

  /** The current record's fields. Decodes only now: call it only for events you need. */
  event(): SseEvent {
    return parseSseEvent(this.bytes, this.start + this.bomLength, this.end);
  }
}

/** Decode one complete event's bytes, bytes[start, end) with any BOM already skipped. With
 * `others`, every line that is not a data line (comments, other fields) is pushed to it as
 * written, without its line end: bytes the client gets that carry no data. */
export function parseSseEvent(bytes: Buffer, start = 0, end: number = bytes.length, others?: string[]): SseEvent {
  const text = bytes.toString('utf8', start, end);
  const n = text.length;
  let type = 'message';
  let data: string | undefined;
  let id: string | undefined;
  let retry: number | undefined;
  let i = 0;
  while (i < n) {
    let j = i;
    for (; j < n; j++) {
      const ch = text.charCodeAt(j);
      if (ch === 0x0a || ch === 0x0d) break;
    }
    if (j > i && text.charCodeAt(i) === 0x3a) {
      others?.push(text.slice(i, j));
    } else if (j > i) {
      const colon = text.indexOf(':', i);
      let name: string;
      let value: string;
      if (colon === -1 || colon > j) {
        name = text.slice(i, j);
        value = '';
      } else {
        name = text.slice(i, colon);
        const v = text.charCodeAt(colon + 1) === 0x20 && colon + 1 < j ? colon + 2 : colon + 1;
        value = text.slice(v, j);
      }
      if (name !== 'data') others?.push(text.slice(i, j));
      switch (name) {
        case 'data':
          data = data === undefined ? value : `${data}\n${value}`;
          break;
        case 'event':
          type = value;
          break;
        case 'id':
          if (!value.includes('\0')) id = value;
          break;
        case 'retry':
          if (/^[0-9]+$/.test(value)) retry = Number(value);
          break;
      }
    }
    // Past the line end: CRLF counts once.
    if (j < n && text.charCodeAt(j) === 0x0d && text.charCodeAt(j + 1) === 0x0a) j++;
    i = j + 1;
  }
  return { type: type === '' ? 'message' : type, data, id, retry };
}
