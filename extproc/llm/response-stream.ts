// Reads a streamed LLM response chunk by chunk, as Envoy hands it over in STREAMED mode: frames
// SSE events or NDJSON lines, observes usage and the served model, and, when asked, withholds
// OpenAI's usage-only event (the one the gate caused by injecting stream_options.include_usage).
//
// Hot path, once per upstream chunk:
// - Events are found on bytes (framer.ts), and only complete events are decoded.
// - An event is decoded and JSON-parsed only when it can carry what we want: its bytes hold
//   "usage" followed by something other than null (OpenAI), or "done" followed by true (Ollama),
//   or it is one of the first data events and the model is still unknown. Every other event is
//   just counted.
// - The byte search for that marker is cached per chunk, so a chunk holding many events is
//   scanned once, not once per event.
// - When nothing is withheld, the very input Buffer is returned (the caller skips the body
//   mutation on identity). When withholding, complete events are forwarded as views of the input
//   where possible, and only an unfinished trailing event is held back.

import { type ApiKind, apiSpec } from './apis.ts';
import type { Framer } from './framer.ts';
import { NdjsonParser } from './ndjson.ts';
import { parseSseEvent, SseParser } from './sse.ts';
import { ollamaUsage, openAiUsage, type Usage } from './usage.ts';

export interface ResponseStream {
  /** Feed one upstream body chunk; returns the bytes to forward to the client in its place: the
   * very same Buffer when nothing is withheld. When dropping, complete events are forwarded and an
   * incomplete trailing event is held back until it completes; at endOfStream everything still
   * held is released. */
  push(chunk: Buffer, endOfStream: boolean): Buffer;
  /** Last usage seen. OpenAI: any chunk whose usage is a non-null object with prompt_tokens.
   * Ollama: the done:true line's counts. */
  readonly usage: Usage | undefined;
  /** The `model` of the stream's chunks. */
  readonly model: string | undefined;
  /** Complete events (SSE, keep-alive comments aside) or non-blank lines (NDJSON) seen. */
  readonly events: number;
  /** Inspected events whose JSON did not parse: counted, forwarded unchanged, never thrown. Only
   * events that were parsed (see above) can be counted. */
  readonly malformed: number;
}

export interface ResponseStreamOptions {
  format: 'sse' | 'ndjson';
  kind: ApiKind;
  /** Withhold OpenAI's usage-only event (empty choices, usage set) from the client. */
  dropUsageEvent: boolean;
  /** Bytes of one unfinished event held before it is passed through uninspected instead
   * (default 1 MiB). */
  maxEventBytes?: number;
}

export function createResponseStream(opts: ResponseStreamOptions): ResponseStream {
  return new StreamReader(opts);
}

const EMPTY = Buffer.alloc(0);
const USAGE = Buffer.from('"usage"');
const DONE = Buffer.from('"done"');
/** Data events parsed for the model name while it is unknown and no usage event supplied it. */
const MODEL_PROBES = 3;

class StreamReader implements ResponseStream {
  usage: Usage | undefined = undefined;
  model: string | undefined = undefined;
  events = 0;
  malformed = 0;

  private readonly framer: Framer;
  private readonly sse: boolean;
  private readonly ollama: boolean;
  private readonly drop: boolean;
  /** "usage" for OpenAI, "done" for Ollama: the marker of an event worth parsing. */
  private readonly marker: Buffer;
  private modelProbes = MODEL_PROBES;
  /** The last record handed out was withheld (its CRLF's LF may still arrive in the next chunk). */
  private lastDropped = false;
  /** Cached marker search: the next occurrence in findIn at or after the last position asked. */
  private findIn: Buffer | undefined = undefined;
  private findAt = -1;

  constructor(opts: ResponseStreamOptions) {
    this.sse = opts.format === 'sse';
    this.framer = this.sse
      ? new SseParser({ maxEventBytes: opts.maxEventBytes })
      : new NdjsonParser({ maxLineBytes: opts.maxEventBytes });
    this.ollama = apiSpec(opts.kind)?.usage === 'ollama';
    // Only OpenAI streams have a usage-only event to withhold.
    this.drop = opts.dropUsageEvent && !this.ollama;
    this.marker = this.ollama ? DONE : USAGE;
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer {
    const f = this.framer;
    f.feed(chunk, endOfStream);
    this.findIn = undefined;
    if (!this.drop) {
      // Observe only: the framer keeps the partial tail itself; the client gets the chunk as is.
      while (f.next()) this.inspect(f);
      return chunk;
    }

    // Forwarded bytes are runs of the chunk, plus whole records that began in earlier chunks
    // (already concatenated by the framer). `run` starts the current run; `done` is how far the
    // chunk has been accounted for; bytes past it are held by the framer.
    let parts: Buffer[] | undefined;
    const leading = f.leadingBytes;
    let run = leading > 0 && this.lastDropped ? leading : 0;
    let done = leading;
    while (f.next()) {
      const withhold = this.inspect(f);
      if (withhold || f.carried) {
        // Only now is a list worth allocating: the common chunk needs none.
        if (parts === undefined) parts = [];
        if (f.chunkStart > run) parts.push(chunk.subarray(run, f.chunkStart));
        if (!withhold) parts.push(f.bytes);
        run = f.chunkEnd;
      }
      this.lastDropped = withhold;
      done = f.chunkEnd;
    }
    if (parts === undefined) {
      if (run === 0 && done === chunk.length) return chunk;
      return done > run ? chunk.subarray(run, done) : EMPTY;
    }
    if (done > run) parts.push(chunk.subarray(run, done));
    if (parts.length === 0) return EMPTY;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Observe one record or part; true to withhold it from the client. */
  private inspect(f: Framer): boolean {
    if (f.kind === 'part') {
      // Too big to have been held, so never parsed: a usage-only event is a few hundred bytes.
      if (f.complete && f.hasContent) this.events++;
      return false;
    }
    if (!f.hasContent) return false;
    this.events++;
    const b = f.bytes;
    const start = f.start + f.bomLength;
    const end = f.end;
    const candidate = this.ollama ? this.doneTrue(b, start, end) : this.usageNotNull(b, start, end);
    if (!candidate && (this.modelProbes === 0 || this.model !== undefined)) return false;

    const text = this.sse ? parseSseEvent(b, start, end).data : b.toString('utf8', start, end);
    if (text === undefined || text === '[DONE]') return false;
    if (!candidate) this.modelProbes--;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.malformed++;
      return false;
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) return false;
    const o = json as Record<string, unknown>;
    if (typeof o.model === 'string') this.model = o.model;
    if (!candidate) return false;
    if (this.ollama) {
      if (o.done === true) this.usage = ollamaUsage(o) ?? this.usage;
      return false;
    }
    const u = o.usage;
    if (u === null || typeof u !== 'object' || Array.isArray(u)) return false;
    this.usage = openAiUsage(u) ?? this.usage;
    // The usage-only chunk include_usage adds: an empty choices array and usage set.
    return this.drop && Array.isArray(o.choices) && o.choices.length === 0;
  }

  /** Next marker occurrence at or after `from` in b. Records are inspected in order within a
   * chunk, so one search result serves every event up to it: the chunk is scanned once. */
  private find(b: Buffer, from: number): number {
    if (b !== this.findIn || (this.findAt !== -1 && this.findAt < from)) {
      this.findIn = b;
      this.findAt = b.indexOf(this.marker, from);
    }
    return this.findAt;
  }

  /** b[start, end) holds "usage" followed by something other than null. */
  private usageNotNull(b: Buffer, start: number, end: number): boolean {
    let i = this.find(b, start);
    while (i !== -1 && i < end) {
      const j = skipSeparator(b, i + USAGE.length, end);
      // "null" is the only value that carries nothing; anything else (even garbage) is parsed.
      if (!(b[j] === 0x6e && b[j + 1] === 0x75 && b[j + 2] === 0x6c && b[j + 3] === 0x6c)) return true;
      i = this.find(b, j);
    }
    return false;
  }

  /** b[start, end) holds "done" followed by true. */
  private doneTrue(b: Buffer, start: number, end: number): boolean {
    let i = this.find(b, start);
    while (i !== -1 && i < end) {
      const j = skipSeparator(b, i + DONE.length, end);
      if (b[j] === 0x74) return true; // t(rue)
      i = this.find(b, j);
    }
    return false;
  }
}

/** Past the whitespace and colon between a JSON key and its value. Line ends count too: an SSE
 * event's JSON may continue on the next data: line. */
function skipSeparator(b: Buffer, from: number, end: number): number {
  let j = from;
  while (j < end) {
    const c = b[j]!;
    if (c !== 0x20 && c !== 0x3a && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    j++;
  }
  return j;
}
