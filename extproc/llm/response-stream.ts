// Reads a streamed LLM response chunk by chunk, as Envoy hands it over in STREAMED mode:
// frames SSE events (WHATWG: events end at a blank line; lines end with LF, CRLF or CR) or
// NDJSON lines, observes usage, and, when asked, withholds OpenAI's usage-only event.
//
// Hot path rules: bytes are scanned once (the scan state survives chunk boundaries, so a held
// tail is never rescanned); an event is decoded and JSON-parsed only when it can carry usage
// (its bytes contain "usage" not followed by null, or Ollama's "done": true) or is the first
// data event (for the model name); when nothing is withheld the very input Buffer is returned.
// Events split across chunks, or a multi-byte UTF-8 character split across them, are whole
// before anything decodes them.
import type { ApiKind } from './shapes.ts';
import { ollamaUsage, openAiUsage, type Usage } from './usage.ts';

export interface ResponseStream {
  /** Feed one upstream chunk; returns the bytes to forward in its place (the same Buffer when
   * nothing is withheld). While withholding, an incomplete trailing event is held back until it
   * completes; at endOfStream everything held is released. */
  push(chunk: Buffer, endOfStream: boolean): Buffer;
  readonly usage: Usage | undefined;
  readonly model: string | undefined;
  /** Complete events (SSE) or non-blank lines (NDJSON) seen. */
  readonly events: number;
  /** Events whose JSON could not be parsed: counted and forwarded unchanged, never thrown. */
  readonly malformed: number;
}

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

export function createResponseStream(opts: {
  format: 'sse' | 'ndjson';
  kind: ApiKind;
  dropUsageEvent: boolean;
}): ResponseStream {
  return new StreamReader(opts.format, opts.kind, opts.dropUsageEvent);
}

class StreamReader implements ResponseStream {
  usage: Usage | undefined;
  model: string | undefined;
  events = 0;
  malformed = 0;

  private readonly sse: boolean;
  private readonly ollama: boolean;
  private readonly drop: boolean;
  /** Bytes of the event in progress (not yet terminated), from earlier chunks. */
  private tail: Buffer = EMPTY;
  /** Scan state carried across chunks. */
  private atLineStart = true;
  private pendingCR = false;
  private sawFirstData = false;

  constructor(format: 'sse' | 'ndjson', kind: ApiKind, drop: boolean) {
    this.sse = format === 'sse';
    this.ollama = kind.startsWith('ollama.');
    // Only OpenAI streams have a usage-only event to withhold.
    this.drop = drop && !this.ollama && this.sse;
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer {
    const held = this.tail.length;
    const data = held === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    let eventStart = 0;
    // Withheld events as [start, end) pairs; only allocated when one is withheld.
    let cut: number[] | undefined;

    for (let i = held; i < data.length; i++) {
      const c = data[i]!;
      if (c !== LF && c !== CR) {
        this.atLineStart = false;
        this.pendingCR = false;
        continue;
      }
      if (c === LF && this.pendingCR) {
        // Second half of a CRLF whose CR was the last byte of the previous chunk.
        this.pendingCR = false;
        continue;
      }
      this.pendingCR = c === CR;
      if (this.sse && !this.atLineStart) {
        // End of a non-blank line; the event goes on.
        this.atLineStart = true;
        continue;
      }
      // SSE: a blank line ends the event. NDJSON: every line end ends one.
      let end = i + 1;
      if (c === CR && end < data.length && data[end] === LF) {
        end++;
        i++;
        this.pendingCR = false;
      }
      if (this.onEvent(data, eventStart, end)) {
        if (cut === undefined) cut = [];
        cut.push(eventStart, end);
      }
      eventStart = end;
      this.atLineStart = true;
    }

    if (endOfStream) {
      // An unterminated last event is still an event.
      if (eventStart < data.length && this.onEvent(data, eventStart, data.length)) {
        if (cut === undefined) cut = [];
        cut.push(eventStart, data.length);
      }
      eventStart = data.length;
      this.tail = EMPTY;
    } else {
      this.tail = eventStart < data.length ? Buffer.from(data.subarray(eventStart)) : EMPTY;
    }

    if (!this.drop) return chunk;
    // Withholding: forward complete events only, minus the withheld ones. A chunk that is
    // exactly whole events with nothing withheld and nothing held goes out untouched.
    if (cut === undefined && held === 0 && eventStart === data.length) return chunk;
    const parts: Buffer[] = [];
    let from = 0;
    if (cut) {
      for (let k = 0; k < cut.length; k += 2) {
        if (cut[k]! > from) parts.push(data.subarray(from, cut[k]!));
        from = cut[k + 1]!;
      }
    }
    if (eventStart > from) parts.push(data.subarray(from, eventStart));
    if (parts.length === 0) return EMPTY;
    // Copy: the result outlives this call, and data may be the caller's chunk.
    return parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
  }

  /** One complete event (SSE) or line (NDJSON) in data[start, end). Returns true to withhold it. */
  private onEvent(data: Buffer, start: number, end: number): boolean {
    // A blank line alone (NDJSON), or the LF of a CRLF split from its CR, is not an event.
    if (!hasContent(data, start, end)) return false;
    this.events++;
    const first = !this.sawFirstData;
    const candidate = this.ollama ? hasDoneTrue(data, start, end) : hasNonNullUsage(data, start, end);
    if (!candidate && !first) return false;

    const text = this.sse ? sseData(data.toString('utf8', start, end)) : data.toString('utf8', start, end).trim();
    if (text === undefined || text === '' || text === '[DONE]') return false;
    this.sawFirstData = true;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.malformed++;
      return false;
    }
    if (json === null || typeof json !== 'object') return false;
    const o = json as Record<string, unknown>;
    if (typeof o.model === 'string') this.model = o.model;
    if (!candidate) return false;
    if (this.ollama) {
      if (o.done === true) this.usage = ollamaUsage(o) ?? this.usage;
      return false;
    }
    const u = openAiUsage(o.usage);
    if (u === undefined) return false;
    this.usage = u;
    // The usage-only chunk include_usage adds: empty choices, usage set.
    return this.drop && Array.isArray(o.choices) && o.choices.length === 0;
  }
}

function hasContent(data: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = data[i]!;
    if (c !== LF && c !== CR && c !== 0x20 && c !== 0x09) return true;
  }
  return false;
}

const USAGE = Buffer.from('"usage"');
const DONE = Buffer.from('"done"');

/** The bytes contain "usage" followed by something other than null. */
function hasNonNullUsage(data: Buffer, start: number, end: number): boolean {
  let i = data.indexOf(USAGE, start);
  while (i !== -1 && i < end) {
    let j = i + USAGE.length;
    while (j < end && (data[j] === 0x20 || data[j] === 0x3a || data[j] === 0x09)) j++;
    if (!(data[j] === 0x6e && data[j + 1] === 0x75 && data[j + 2] === 0x6c && data[j + 3] === 0x6c)) return true; // not "null"
    i = data.indexOf(USAGE, j);
  }
  return false;
}

/** The bytes contain "done" followed by true. */
function hasDoneTrue(data: Buffer, start: number, end: number): boolean {
  const i = data.indexOf(DONE, start);
  if (i === -1 || i >= end) return false;
  let j = i + DONE.length;
  while (j < end && (data[j] === 0x20 || data[j] === 0x3a || data[j] === 0x09)) j++;
  return data[j] === 0x74; // t(rue)
}

/** The data of one SSE event: its data: lines joined by "\n"; undefined if it has none. A
 * leading BOM (start of stream) and comment lines are ignored. */
function sseData(event: string): string | undefined {
  let data: string | undefined;
  const text = event.charCodeAt(0) === 0xfeff ? event.slice(1) : event;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line.startsWith('data')) {
      if (line.length === 4) data = data === undefined ? '' : `${data}\n`;
      else if (line[4] === ':') {
        const v = line[5] === ' ' ? line.slice(6) : line.slice(5);
        data = data === undefined ? v : `${data}\n${v}`;
      }
    }
  }
  return data;
}
