// Reads a streamed LLM response chunk by chunk, as Envoy hands it over in STREAMED mode: frames
// SSE events or NDJSON lines, observes usage and the served model, and, when asked, withholds
// OpenAI's usage-only event (the one the gate caused by injecting stream_options.include_usage).
//
// Hot path, once per upstream chunk:
// - Events are found on bytes (framer.ts), and only complete events are decoded.
// - An event is decoded and JSON-parsed only when it can carry what we want: its bytes hold
//   "usage" (OpenAI) or "details" (TGI) followed by something other than null, or "done"
//   followed by true (Ollama), or it is one of the first data events and the model is still
//   unknown (TGI's events never name it). Every other event is just counted.
// - The byte search for that marker is cached per chunk, so a chunk holding many events is
//   scanned once, not once per event.
// - Events for read-only listeners (metering's delivered text) are kept as byte ranges and
//   decoded at flushEvents, which the gate runs once the chunk's answer is written: they cannot
//   change what the client gets, so they are not on the chunk's trip. An event that may be the
//   usage one is decoded at once, after the ones before it.
// - When nothing is withheld, the very input Buffer is returned (the caller skips the body
//   mutation on identity). When withholding, complete events are forwarded as views of the input
//   where possible, and only an unfinished trailing event is held back.

import { type ApiKind, apiSpec } from './apis.ts';
import type { Framer } from './framer.ts';
import { NdjsonParser } from './ndjson.ts';
import { parseSseEvent, SseParser } from './sse.ts';
import { ollamaUsage, openAiUsage, tgiUsage, type Usage } from './usage.ts';

/** One data event of a streamed response (an OpenAI chunk or an Ollama NDJSON record), decoded,
 * for stages that read or rewrite what the client receives. */
export interface ResponseEvent {
  /** The event's JSON object. */
  readonly data: Readonly<Record<string, unknown>>;
  /** The text it adds, per choice: OpenAI choices[i].delta.content (chat) or choices[i].text
   * (completions); Ollama message.content (chat) or response (generate), as choice 0; TGI
   * token.text unless the token is special (an end-of-sequence marker generated_text leaves out),
   * as choice 0. Once a stage replaced the event, those of the replacement (none once dropped):
   * what later stages read is what the client gets. */
  readonly texts: readonly TextDelta[];
  /** Tool-call argument fragments: OpenAI choices[i].delta.tool_calls[j].function.arguments. */
  readonly toolArguments: readonly ToolArgumentsDelta[];
  /** Usage this event reports, if any. */
  readonly usage: Usage | undefined;
  /** SSE, for stages that may change events only: the event's lines that are not data lines
   * (comments, `event:`, `id:`, `retry:`, fields no client reads), as written. They reach the
   * client too. A record with such lines but no JSON data (a keep-alive comment, an id-only
   * event, `[DONE]` with a comment) comes as an event of its own with `data` empty and no texts,
   * so those lines are judged as well. Empty otherwise. */
  readonly otherLines: readonly string[];
  /** SSE's `data: [DONE]`, for stages that may change events: the stream's last word, with `data`
   * empty, so a stage can still send what it held (insertBefore) when upstream never said a
   * choice was finished. */
  readonly end: boolean;
  /** Send this JSON to the client as an event of its own, before this one. */
  insertBefore(data: unknown): void;
  /** Withhold this event from the client. */
  drop(): void;
  /** Send this JSON to the client in the event's place (framed like the original, its other
   * lines kept before the data line). */
  replace(data: unknown): void;
}

export interface TextDelta {
  readonly choice: number;
  readonly text: string;
}

export interface ToolArgumentsDelta {
  readonly choice: number;
  readonly call: number;
  readonly text: string;
}

/** The error a stream ends with: OpenAI's SDKs raise an APIError for an SSE event whose data has
 * an `error` object; Ollama's clients raise for a record with an `error` string; TGI's clients
 * (huggingface_hub, text_generation) for an event with `error` and `error_type` strings. */
export interface StreamError {
  message: string;
  type: string;
  code: string;
  param: string | null;
}

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
  /** End the client's stream now with an error event the SDKs raise: call it from the event
   * listener. What the current chunk held before the event is forwarded; the event and
   * everything after it is not, for the rest of the response. */
  endWithError(err: StreamError): void;
  /** endWithError was called. */
  readonly ended: boolean;
  /** Hand the events decoding was deferred for (deferReadOnlyEvents) to the listener now, in
   * order. push() does it first, and at the end of the stream before it returns. */
  flushEvents(): void;
  /** Events waiting for flushEvents. */
  readonly deferredEvents: number;
}

export interface ResponseStreamOptions {
  format: 'sse' | 'ndjson';
  kind: ApiKind;
  /** Withhold OpenAI's usage-only event (empty choices, usage set) from the client. */
  dropUsageEvent: boolean;
  /** Bytes of one unfinished event held before it is passed through uninspected instead
   * (default 1 MiB). */
  maxEventBytes?: number;
  /** Called with every data event, decoded, when stages read events. Without it only the few
   * events that can carry usage or the model are decoded (the metering fast path). Events over
   * maxEventBytes pass uninspected. */
  onEvent?: ((event: ResponseEvent) => void) | undefined;
  /** onEvent only reads: its drop(), replace() and endWithError are not used, so the chunks pass
   * through unchanged (the observe-only path). */
  readOnlyEvents?: boolean;
  /** With readOnlyEvents: decode an event that cannot change what the client gets (no usage
   * marker) only at flushEvents, which the caller runs once the chunk's answer is on its way:
   * a read-only listener (metering keeps the delivered text) then costs the chunk's trip
   * nothing. The order of events the listener sees is kept. */
  deferReadOnlyEvents?: boolean;
  /** With onEvent: called once when a data event cannot be handed to the listener: it outgrew
   * maxEventBytes (`too_large`), or its data is not a JSON object (`unreadable`: not JSON, or an
   * array, a string...; no OpenAI-compatible, Ollama or TGI stream sends one). Stages that read
   * events were promised every one (DLP cannot release text it did not see), so the caller ends
   * the stream here (endWithError) rather than pass it uninspected. */
  onUninspectable?: ((why: Uninspectable) => void) | undefined;
}

export type Uninspectable = 'too_large' | 'unreadable';

export function createResponseStream(opts: ResponseStreamOptions): ResponseStream {
  return new StreamReader(opts);
}

const EMPTY = Buffer.alloc(0);
const USAGE = Buffer.from('"usage"');
const DONE = Buffer.from('"done"');
const DETAILS = Buffer.from('"details"');
/** Data events parsed for the model name while it is unknown and no usage event supplied it. */
const MODEL_PROBES = 3;

/** What inspect() decided for a record: forward it, withhold it, or send these bytes instead. */
const KEEP = 0;
const WITHHOLD = 1;
type Action = typeof KEEP | typeof WITHHOLD | Buffer;

class StreamReader implements ResponseStream {
  usage: Usage | undefined = undefined;
  model: string | undefined = undefined;
  events = 0;
  malformed = 0;
  ended = false;
  private readonly onEvent: ((event: ResponseEvent) => void) | undefined;
  private readonly readOnly: boolean;
  private readonly onUninspectable: ((why: Uninspectable) => void) | undefined;
  /** The listener may change events: every byte the client gets must reach it, SSE lines that
   * carry no data included. */
  private readonly changing: boolean;
  /** The current record's other lines (see ResponseEvent.otherLines), reused per record. */
  private readonly others: string[] = [];
  /** Set by endWithError during the current record: the bytes sent in its place. */
  private endBytes: Buffer | undefined;
  /** deferReadOnlyEvents: events to decode at flushEvents, as byte ranges, in order. */
  private readonly deferring: boolean;
  private readonly deferredIn: Buffer[] = [];
  private readonly deferredAt: number[] = [];
  private readonly deferredTo: number[] = [];

  private readonly framer: Framer;
  private readonly sse: boolean;
  private readonly ollama: boolean;
  private readonly tgi: boolean;
  private readonly drop: boolean;
  /** "usage" for OpenAI, "done" for Ollama, "details" for TGI: the marker of an event worth
   * parsing. */
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
    const usage = apiSpec(opts.kind)?.usage;
    this.ollama = usage === 'ollama';
    this.tgi = usage === 'tgi';
    // Only OpenAI streams have a usage-only event to withhold.
    this.drop = opts.dropUsageEvent && usage === 'openai';
    this.marker = this.ollama ? DONE : this.tgi ? DETAILS : USAGE;
    // TGI's events never name the model: nothing to probe for.
    if (this.tgi) this.modelProbes = 0;
    this.onEvent = opts.onEvent;
    this.readOnly = opts.readOnlyEvents === true;
    // Read-only listeners (metering) were promised nothing: only a stage that may change or
    // withhold text (DLP) must see every event, so only it ends an uninspectable stream.
    this.changing = opts.onEvent !== undefined && !this.readOnly;
    this.onUninspectable = this.changing ? opts.onUninspectable : undefined;
    this.deferring = this.readOnly && opts.onEvent !== undefined && opts.deferReadOnlyEvents === true;
  }

  get deferredEvents(): number {
    return this.deferredAt.length;
  }

  flushEvents(): void {
    const n = this.deferredAt.length;
    if (n === 0) return;
    const ins = this.deferredIn;
    const ats = this.deferredAt;
    const tos = this.deferredTo;
    for (let i = 0; i < n; i++) this.decode(ins[i]!, ats[i]!, tos[i]!, false);
    // A listener cannot push (it runs inside push or after it), so nothing was added meanwhile.
    ins.length = 0;
    ats.length = 0;
    tos.length = 0;
  }

  endWithError(err: StreamError): void {
    if (this.ended) return;
    this.ended = true;
    const json = this.ollama
      ? JSON.stringify({ error: err.message })
      : this.tgi
        ? JSON.stringify({ error: err.message, error_type: err.type })
        : JSON.stringify({ error: { message: err.message, type: err.type, code: err.code, param: err.param } });
    this.endBytes = Buffer.from(this.sse ? `data: ${json}\n\n` : `${json}\n`);
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer {
    // After an error event nothing more reaches the client.
    if (this.ended) return EMPTY;
    // The events of earlier chunks reach the listener before this chunk's.
    if (this.deferredAt.length > 0) this.flushEvents();
    const f = this.framer;
    f.feed(chunk, endOfStream);
    this.findIn = undefined;
    if (!this.drop && (this.onEvent === undefined || this.readOnly)) {
      // Observe only: the framer keeps the partial tail itself; the client gets the chunk as is.
      while (f.next()) this.inspect(f);
      if (endOfStream) this.flushEvents();
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
      const action = this.inspect(f);
      if (this.endBytes !== undefined) {
        // Ended at this record: what came before it goes, then the error event, then nothing.
        if (parts === undefined) parts = [];
        if (f.chunkStart > run) parts.push(chunk.subarray(run, f.chunkStart));
        parts.push(this.endBytes);
        this.endBytes = undefined;
        run = done = chunk.length;
        break;
      }
      if (action !== KEEP || f.carried) {
        // Only now is a list worth allocating: the common chunk needs none.
        if (parts === undefined) parts = [];
        if (f.chunkStart > run) parts.push(chunk.subarray(run, f.chunkStart));
        if (action === KEEP) parts.push(f.bytes);
        else if (action !== WITHHOLD) parts.push(action);
        run = f.chunkEnd;
      }
      // A replaced record carries its own line end, like a withheld one carries none: a CRLF's
      // LF arriving in the next chunk belongs to neither.
      this.lastDropped = action !== KEEP;
      done = f.chunkEnd;
    }
    if (endOfStream) this.flushEvents();
    if (parts === undefined) {
      if (run === 0 && done === chunk.length) return chunk;
      return done > run ? chunk.subarray(run, done) : EMPTY;
    }
    if (done > run) parts.push(chunk.subarray(run, done));
    if (parts.length === 0) return EMPTY;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Observe one record or part, and say what the client gets of it. */
  private inspect(f: Framer): Action {
    if (f.kind === 'part') {
      if (this.onUninspectable !== undefined) {
        this.onUninspectable('too_large');
        if (this.endBytes !== undefined) return KEEP;
      }
      // Too big to have been held, so never parsed: a usage-only event is a few hundred bytes.
      if (f.complete && f.hasContent) this.events++;
      return KEEP;
    }
    const b = f.bytes;
    const start = f.start + f.bomLength;
    const end = f.end;
    if (!f.hasContent) {
      // A stray blank line carries nothing; a comment-only record (a keep-alive) carries its text,
      // which a listener that may change events judges like any other byte the client gets.
      if (this.changing && this.sse && b[start] === 0x3a) return this.decode(b, start, end, false);
      return KEEP;
    }
    this.events++;
    const listening = this.onEvent !== undefined;
    const candidate = this.ollama ? this.doneTrue(b, start, end) : this.markerNotNull(b, start, end);
    if (!listening && !candidate && (this.modelProbes === 0 || this.model !== undefined)) return KEEP;
    if (this.deferring) {
      if (!candidate) {
        // Cannot be withheld or carry usage: the client gets it as it is, decoded later.
        this.deferredIn.push(b);
        this.deferredAt.push(start);
        this.deferredTo.push(end);
        return KEEP;
      }
      // Decoded now (it may be the usage event to withhold): the listener sees the ones before it first.
      this.flushEvents();
    }
    return this.decode(b, start, end, candidate);
  }

  /** Decode one event's JSON, note its model and usage, and hand it to the listener. */
  private decode(b: Buffer, start: number, end: number, candidate: boolean): Action {
    const listening = this.onEvent !== undefined;
    const others = this.changing && this.sse ? this.others : undefined;
    if (others !== undefined) others.length = 0;
    const text = this.sse ? parseSseEvent(b, start, end, others).data : b.toString('utf8', start, end);
    if (text === undefined || text === '[DONE]') {
      // [DONE] reaches a stage that may change events (it may still have text to send), and so
      // does a record whose other lines it must judge.
      const done = text === '[DONE]' && others !== undefined;
      if (!done && (others === undefined || others.length === 0)) return KEEP;
      return this.emit(NO_DATA, undefined, done, b.subarray(start, end));
    }
    if (!candidate && this.modelProbes > 0) this.modelProbes--;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.malformed++;
      this.onUninspectable?.('unreadable');
      return KEEP;
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      this.onUninspectable?.('unreadable');
      return KEEP;
    }
    const o = json as Record<string, unknown>;
    if (typeof o.model === 'string') this.model = o.model;
    let usage: Usage | undefined;
    let usageOnly = false;
    if (candidate) {
      if (this.ollama) {
        if (o.done === true) usage = ollamaUsage(o);
      } else if (this.tgi) {
        usage = tgiUsage(o.details);
      } else if (o.usage !== null && typeof o.usage === 'object' && !Array.isArray(o.usage)) {
        usage = openAiUsage(o.usage);
        // The usage-only chunk include_usage adds: an empty choices array and usage set.
        usageOnly = Array.isArray(o.choices) && o.choices.length === 0;
      }
      this.usage = usage ?? this.usage;
    }
    if (this.drop && usageOnly) return WITHHOLD;
    if (!listening) return KEEP;
    const action = this.emit(o, usage, false, b.subarray(start, end));
    // The stages judged the parse; the client gets the bytes. JSON.parse keeps the last value of a
    // name given twice, so a first one no stage saw would go out with them (and a reader that
    // keeps the first would show it): when a stage may change events, such an event goes out as
    // its parse. Told apart by count: the bytes hold two quotes per name and string value.
    if (action === KEEP && this.changing && this.endBytes === undefined && quotesIn(text) !== 2 * stringsIn(o))
      return this.frame(JSON.stringify(o), this.others.length > 0 ? this.others : NO_LINES);
    return action;
  }

  /** An event's bytes for this JSON, framed like the stream's (SSE: its other lines first). */
  private frame(json: string, others: readonly string[]): Buffer {
    if (!this.sse) return Buffer.from(`${json}\n`);
    const lines = others.length > 0 ? `${others.join('\n')}\n` : '';
    return Buffer.from(`${lines}data: ${json}\n\n`);
  }

  /** Hand one decoded event to the listener; its drop() or replace() decides the action. */
  private textsOf(o: Readonly<Record<string, unknown>>): readonly TextDelta[] {
    return this.ollama ? ollamaTexts(o) : this.tgi ? tgiTexts(o) : openAiTexts(o);
  }

  private toolArgumentsOf(o: Readonly<Record<string, unknown>>): readonly ToolArgumentsDelta[] {
    return this.ollama || this.tgi ? [] : openAiToolArguments(o);
  }

  /** `raw`: the record's bytes, which go out after any event inserted before it. */
  private emit(data: Readonly<Record<string, unknown>>, usage: Usage | undefined, end: boolean, raw: Buffer): Action {
    let action: Action = KEEP;
    let inserted: Buffer[] | undefined;
    const others = this.changing && this.others.length > 0 ? this.others.slice() : NO_LINES;
    // Stages after the one that dropped or replaced the event see what the client gets in its
    // place (audit.capture keeps the delivered text): its texts follow the replacement.
    const event: { -readonly [K in keyof ResponseEvent]: ResponseEvent[K] } = {
      data,
      texts: this.textsOf(data),
      toolArguments: this.toolArgumentsOf(data),
      usage,
      otherLines: others,
      end,
      insertBefore: (next: unknown) => {
        inserted ??= [];
        inserted.push(this.frame(JSON.stringify(next), NO_LINES));
        // Later stages count what the client gets: the inserted event's texts too.
        const o = next !== null && typeof next === 'object' ? (next as Record<string, unknown>) : {};
        event.texts = [...event.texts, ...this.textsOf(o)];
        event.toolArguments = [...event.toolArguments, ...this.toolArgumentsOf(o)];
      },
      drop: () => {
        action = WITHHOLD;
        event.texts = [];
        event.toolArguments = [];
      },
      replace: (next: unknown) => {
        action = this.frame(JSON.stringify(next), others);
        const o = next !== null && typeof next === 'object' ? (next as Record<string, unknown>) : {};
        event.texts = this.textsOf(o);
        event.toolArguments = this.toolArgumentsOf(o);
      },
    };
    this.onEvent!(event);
    // The listener's calls set these (TypeScript cannot see them through the closures).
    const done = action as Action;
    const before = inserted as Buffer[] | undefined;
    if (before === undefined) return done;
    if (done !== WITHHOLD) before.push(done === KEEP ? raw : done);
    return Buffer.concat(before);
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

  /** b[start, end) holds the marker ("usage", "details") followed by something other than null. */
  private markerNotNull(b: Buffer, start: number, end: number): boolean {
    let i = this.find(b, start);
    while (i !== -1 && i < end) {
      const j = skipSeparator(b, i + this.marker.length, end);
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

/** Quotes in JSON text that are not escaped: two per name and string value. */
function quotesIn(text: string): number {
  let n = 0;
  for (let i = text.indexOf('"'); i !== -1; i = text.indexOf('"', i + 1)) {
    let slashes = 0;
    for (let j = i - 1; j >= 0 && text.charCodeAt(j) === 0x5c; j--) slashes++;
    if (slashes % 2 === 0) n++;
  }
  return n;
}

/** Names and string values in a parsed JSON value (iterative: its depth is upstream's). */
function stringsIn(v: unknown): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') n++;
    else if (Array.isArray(x)) for (let i = 0; i < x.length; i++) stack.push(x[i]);
    else if (x !== null && typeof x === 'object')
      for (const k in x as Record<string, unknown>) {
        n++;
        stack.push((x as Record<string, unknown>)[k]);
      }
  }
  return n;
}

const NO_TEXT: readonly TextDelta[] = [];
const NO_LINES: readonly string[] = [];
/** The data of an SSE record that has other lines but no JSON data. */
const NO_DATA: Readonly<Record<string, unknown>> = Object.freeze({});

function openAiTexts(o: Record<string, unknown>): readonly TextDelta[] {
  const choices = o.choices;
  if (!Array.isArray(choices) || choices.length === 0) return NO_TEXT;
  const out: TextDelta[] = [];
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i] as Record<string, unknown> | null;
    if (c === null || typeof c !== 'object') continue;
    const choice = typeof c.index === 'number' ? c.index : i;
    const delta = c.delta as Record<string, unknown> | undefined;
    const text = delta !== null && typeof delta === 'object' ? delta.content : c.text;
    if (typeof text === 'string' && text.length > 0) out.push({ choice, text });
  }
  return out;
}

function openAiToolArguments(o: Record<string, unknown>): readonly ToolArgumentsDelta[] {
  const choices = o.choices;
  if (!Array.isArray(choices)) return [];
  const out: ToolArgumentsDelta[] = [];
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i] as { index?: unknown; delta?: { tool_calls?: unknown } } | null;
    const calls = c?.delta?.tool_calls;
    if (!Array.isArray(calls)) continue;
    const choice = typeof c?.index === 'number' ? c.index : i;
    for (let j = 0; j < calls.length; j++) {
      const call = calls[j] as { index?: unknown; function?: { arguments?: unknown } } | null;
      const text = call?.function?.arguments;
      if (typeof text === 'string' && text.length > 0)
        out.push({ choice, call: typeof call?.index === 'number' ? call.index : j, text });
    }
  }
  return out;
}

function tgiTexts(o: Record<string, unknown>): readonly TextDelta[] {
  const token = o.token as { text?: unknown; special?: unknown } | undefined;
  if (token === null || typeof token !== 'object' || token.special === true) return NO_TEXT;
  const text = token.text;
  return typeof text === 'string' && text.length > 0 ? [{ choice: 0, text }] : NO_TEXT;
}

function ollamaTexts(o: Record<string, unknown>): readonly TextDelta[] {
  const message = o.message as { content?: unknown } | undefined;
  const text = message !== null && typeof message === 'object' ? message.content : o.response;
  return typeof text === 'string' && text.length > 0 ? [{ choice: 0, text }] : NO_TEXT;
}
