// Newline-delimited JSON (Ollama's streaming format), read incrementally over Buffers: one JSON
// value per line. LF ends a line (a CR before it is JSON whitespace), blank lines carry nothing,
// and the last line may lack its newline at the end of the stream.
import { DEFAULT_MAX_RECORD_BYTES, Framer } from './framer.ts';

export { DEFAULT_MAX_RECORD_BYTES, type FrameKind } from './framer.ts';

/**
 * Incremental NDJSON framer, used like SseParser: feed(chunk, endOfStream), then next() until
 * false. Each record is one line's exact bytes, newline included; a blank line is a record
 * without content. A line still unfinished at the end of a chunk is held until it completes.
 */
export class NdjsonParser extends Framer {
  constructor(opts: { maxLineBytes?: number } = {}) {
    super('ndjson', opts.maxLineBytes ?? DEFAULT_MAX_RECORD_BYTES);
  }

  /** The current line as text, without a leading BOM. Decodes only now. */
  text(): string {
    return this.bytes.toString('utf8', this.start + this.bomLength, this.end);
  }

  /** The current line's JSON value; undefined when it does not parse (never throws). */
  value(): unknown {
    try {
      return JSON.parse(this.text());
    } catch {
      return undefined;
    }
  }
}
