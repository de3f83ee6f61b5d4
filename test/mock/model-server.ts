// A mock model server: the one thing the tests and the bench fake. It speaks the wire formats of
// OpenAI's API (as OpenAI and vLLM's OpenAI server send them) and Ollama's, streams SSE or NDJSON
// with controllable timing, and records what reached it so tests can assert what went upstream.
//
//   node test/mock/model-server.ts --port 8000 [--host H] [--latency-ms N] [--chunks N] [--chunk-delay-ms N]
//
// Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,
// POST /api/chat, POST /api/generate, GET /api/tags, and TGI's native POST /generate,
// /generate_stream and / (compat: streams when the body says so); anything else is a 404 OpenAI
// error.
//
// Per-request overrides by request header, so one mock serves many test cases:
//   x-mock-latency-ms      delay before the response headers
//   x-mock-chunks          number of content chunks (0 = an empty reply)
//   x-mock-chunk-delay-ms  delay before each content chunk that is not the first event of a stream
//   x-mock-status          a 4xx/5xx status, answered with an OpenAI error body (after the latency)
//   x-mock-usage           auto | always | never (see below)
//   x-mock-split: 1        write each SSE event / NDJSON line in two writes, 2 ms apart, cut inside a
//                          multi-byte UTF-8 character when the event has one (else in the middle)
//   x-mock-timestamps: 1   each streamed content chunk carries "x_mock_sent_ms", the wall-clock time
//                          (ms, µs precision) it was written, so a client on the same host can
//                          time every chunk's trip through the proxy (the bench does)
//   x-mock-content         the reply text, spread over the chunks by code point as evenly as possible;
//                          percent-decoded when it is valid percent-encoding (encodeURIComponent lets
//                          any Unicode through a header), else taken as is
//   x-mock-pieces          the reply's content chunks exactly: a JSON array of strings, percent-
//                          encoded (encodeURIComponent), so a test chooses every chunk border
//   x-mock-reasoning       OpenAI chat: reasoning streamed before the content, as vLLM's reasoning
//                          parsers do (delta.reasoning_content), one string per chunk, in the
//                          format of x-mock-pieces; in a whole answer, message.reasoning_content
//   x-mock-trailers: 1     any 200 answer (JSON or stream) is sent chunked, declares `Trailer:
//                          x-mock-done` and ends with the HTTP trailer `x-mock-done: 1`
//   x-mock-content-length: 1  a streamed (SSE/NDJSON) reply is built whole first and sent with a
//                          content-length: in one write, or one write per event (with the usual
//                          x-mock-chunk-delay-ms pauses) when a chunk delay is set
//   x-mock-embedding-dims  floats per embedding (default 8, at most 8,000,000): with a few inputs
//                          the JSON answer reaches tens of MiB (~17 bytes a float), for tests of
//                          large responses. Base64 answers carry the same floats as float32
//
// Uploads cut short (the client or the proxy reset the request mid-body) are recorded in
// `received` too, with `complete: false` and the bytes that did arrive, so a test can assert that
// no byte of a body the gate had not checked reached the model server.
//
// Deterministic usage: prompt tokens = whitespace-separated words across the messages' contents,
// the prompt or the input (at least 1); completion tokens = content chunks sent. For a model
// whose own encoding the gate knows (OpenAI's names: gpt-4o*, gpt-4*, ...; the gate's built-in
// map), usage is the real count with that encoding, as the gate counts it when usage is absent:
// ground truth for metering tests. Usage in OpenAI
// streams follows OpenAI: with `auto`, only when stream_options.include_usage is true (then every
// chunk carries "usage":null and a last chunk with "choices":[] carries the usage); `always` sends
// it regardless; `never` leaves usage out everywhere (Ollama: the done line's token counts).
//
// TGI serves one model and its bodies name none: its counts are always the real ones with
// TGI_MOCK_ENCODING (the gate's default tokenizer), prompt from `inputs`, completion from the
// whole reply. As TGI does, a stream's last event carries details (generated_tokens,
// input_length: `never` leaves input_length out, as TGI before 2.0 did); a whole answer carries
// details only when parameters.details is true, and prefill (one entry per prompt token) only
// with parameters.decoder_input_details.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import type { ApiKind } from '../../extproc/llm/apis.ts';
import { completionTokensOfText, promptTokens as tokenizerPromptTokens } from '../../extproc/metering/count.ts';
import { DEFAULT_MODEL_ENCODINGS, type Encoding } from '../../extproc/metering/encodings.ts';
import { compilePatterns } from '../../extproc/policy/patterns.ts';

export interface MockOptions {
  /** 0 = a free port (default). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Delay before the response headers (default 0). */
  latencyMs?: number;
  /** Streamed content chunks (default 5). */
  chunks?: number;
  /** Delay between streamed chunks (default 0). */
  chunkDelayMs?: number;
  /** Keep each request in `received` (default true). The CLI turns it off: nobody reads it there. */
  record?: boolean;
}

export interface ReceivedRequest {
  method: string;
  /** The request path without its query string. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: unknown;
  /** False when the upload was cut before its end (then `body` is what arrived, never answered). */
  complete: boolean;
}

export interface MockModel {
  /** http://HOST:PORT */
  url: string;
  port: number;
  received: ReceivedRequest[];
  /** Requests whose body is still arriving (recorded in `received` once it ends or is cut). */
  readonly uploading: number;
  /** Empties `received`. */
  reset(): void;
  /** Stops listening and drops open connections (streams in flight are cut). Idempotent. */
  close(): Promise<void>;
}

/** The default reply, a word per chunk, cycling when there are more chunks than words. */
const WORDS = ['Hello', ' from', ' the', ' mock', ' model', ' server! '];
const MODELS = ['mock-small', 'mock-large'];
const MODELS_CREATED = 1_700_000_000;
const MAX_CHUNKS = 100_000;
const DEFAULT_EMBEDDING_DIMS = 8;
const MAX_EMBEDDING_DIMS = 8_000_000;

type UsageMode = 'auto' | 'always' | 'never';

interface Defaults {
  latencyMs: number;
  chunks: number;
  chunkDelayMs: number;
}

/** What one request asked of the mock, defaults overridden by its x-mock-* headers. */
interface Plan {
  latencyMs: number;
  chunkDelayMs: number;
  status: number | undefined;
  usage: UsageMode;
  split: boolean;
  /** Stamp each streamed content chunk with its send time (x_mock_sent_ms). */
  stamp: boolean;
  /** The reply, one string per content chunk. */
  pieces: readonly string[];
  /** OpenAI chat: reasoning chunks streamed before the content (x-mock-reasoning). */
  reasoning: readonly string[] | undefined;
  /** End every 200 answer with the HTTP trailer x-mock-done: 1 (chunked). */
  trailers: boolean;
  /** Send a streamed reply whole, with a content-length. */
  contentLength: boolean;
  /** Floats per embedding. */
  embeddingDims: number;
}

/** One request in flight: its response, and the timer it waits on, cleared when the client leaves. */
interface Exchange {
  res: ServerResponse;
  closed: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  wake: ((open: boolean) => void) | undefined;
  /** process.hrtime.bigint() when the request arrived, and when the response headers went out. */
  t0: bigint;
  tHeaders: bigint;
  seq: number;
}

type Json = Record<string, unknown>;
/** A stream event: its text, or a function building it when it is written (Ollama's timings). */
type Event = string | (() => string);
type Handler = (x: Exchange, body: Json, p: Plan) => void | Promise<void>;

// ---------------------------------------------------------------------------------------------
// Requests: plans, prompt words, replies

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function nonNegative(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : dflt;
}

const defaultPieces = new Map<number, readonly string[]>();
function wordsFor(chunks: number): readonly string[] {
  let pieces = defaultPieces.get(chunks);
  if (!pieces) {
    pieces = Array.from({ length: chunks }, (_, i) => WORDS[i % WORDS.length]!);
    if (defaultPieces.size < 256) defaultPieces.set(chunks, pieces);
  }
  return pieces;
}

function plan(req: IncomingMessage, d: Defaults): Plan {
  const chunks = Math.min(MAX_CHUNKS, Math.floor(nonNegative(header(req, 'x-mock-chunks'), d.chunks)));
  const content = header(req, 'x-mock-content');
  const usage = header(req, 'x-mock-usage');
  const status = Number(header(req, 'x-mock-status'));
  return {
    latencyMs: nonNegative(header(req, 'x-mock-latency-ms'), d.latencyMs),
    chunkDelayMs: nonNegative(header(req, 'x-mock-chunk-delay-ms'), d.chunkDelayMs),
    status: Number.isInteger(status) && status >= 400 && status <= 599 ? status : undefined,
    usage: usage === 'always' || usage === 'never' ? usage : 'auto',
    split: header(req, 'x-mock-split') === '1',
    stamp: header(req, 'x-mock-timestamps') === '1',
    pieces:
      piecesOf(header(req, 'x-mock-pieces')) ??
      (content === undefined ? wordsFor(chunks) : spread(percentDecoded(content), chunks)),
    reasoning: piecesOf(header(req, 'x-mock-reasoning')),
    trailers: header(req, 'x-mock-trailers') === '1',
    contentLength: header(req, 'x-mock-content-length') === '1',
    embeddingDims: Math.max(
      1,
      Math.min(
        MAX_EMBEDDING_DIMS,
        Math.floor(nonNegative(header(req, 'x-mock-embedding-dims'), DEFAULT_EMBEDDING_DIMS)),
      ),
    ),
  };
}

function percentDecoded(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** x-mock-pieces: a percent-encoded JSON array of strings, or undefined when absent or not one. */
function piecesOf(h: string | undefined): string[] | undefined {
  if (h === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(decodeURIComponent(h));
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.slice(0, MAX_CHUNKS);
  } catch {
    // Not percent-encoded JSON: ignored, like any malformed x-mock-* header.
  }
  return undefined;
}

/** Text spread over n pieces by code point, as evenly as possible. */
export function spread(text: string, n: number): string[] {
  const cps = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(cps.slice(Math.floor((i * cps.length) / n), Math.floor(((i + 1) * cps.length) / n)).join(''));
  return out;
}

const WORD = /\S+/g;
function words(s: string): number {
  return s.match(WORD)?.length ?? 0;
}

/** Words in a message's content: a string, or an array of parts ({type:"text",text}). */
function contentWords(content: unknown): number {
  if (typeof content === 'string') return words(content);
  let n = 0;
  if (Array.isArray(content))
    for (const part of content)
      if (typeof part === 'string') n += words(part);
      else if (isObject(part) && typeof part.text === 'string') n += words(part.text);
  return n;
}

const EXACT = Object.entries(DEFAULT_MODEL_ENCODINGS).map(([p, e]) => [compilePatterns([p]), e] as const);

/** The encoding of a model the gate counts exactly, if it is one. */
function exactEncoding(model: unknown): Encoding | undefined {
  if (typeof model !== 'string') return undefined;
  for (const [matches, enc] of EXACT) if (matches(model)) return enc;
  return undefined;
}

/** Usage counts: the model's real token counts when it has a known encoding, else the mock's
 * words and chunks. */
function counts(kind: ApiKind, body: Json, pieces: readonly string[]): { prompt: number; completion: number } {
  const enc = exactEncoding(body.model);
  if (enc === undefined) return { prompt: promptTokens(body), completion: pieces.length };
  return { prompt: tokenizerPromptTokens(kind, body, enc), completion: completionTokensOfText(enc, pieces.join('')) };
}

/** The mock's deterministic prompt "tokens": whitespace-separated words, at least 1. Token-id
 * arrays (OpenAI accepts them for prompt and input) count one per id. */
function promptTokens(body: Json): number {
  let n = 0;
  if (Array.isArray(body.messages)) for (const m of body.messages) if (isObject(m)) n += contentWords(m.content);
  for (const v of [body.prompt, body.input]) {
    if (typeof v === 'string') n += words(v);
    else if (Array.isArray(v))
      for (const x of v)
        if (typeof x === 'string') n += words(x);
        else if (typeof x === 'number') n += 1;
        else if (Array.isArray(x)) n += x.length;
  }
  return Math.max(1, n);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Writing: timers that a client leaving clears, split writes, JSON and errors

/** Resolves true after ms, or false at once when the client has gone (the timer is cleared). */
function wait(x: Exchange, ms: number): Promise<boolean> {
  if (x.closed) return Promise.resolve(false);
  return new Promise((resolve) => {
    x.wake = resolve;
    x.timer = setTimeout(() => {
      x.timer = undefined;
      x.wake = undefined;
      resolve(!x.closed);
    }, ms);
  });
}

function sendJson(x: Exchange, status: number, body: unknown, p?: Plan): void {
  sendRaw(x, status, JSON.stringify(body), p);
}

const TRAILER_NAME = 'x-mock-done';

/** A whole JSON answer: with a content-length, or chunked and ending with the trailer (p.trailers). */
function sendRaw(x: Exchange, status: number, data: string, p?: Plan): void {
  if (x.closed) return;
  if (p?.trailers && status === 200) {
    x.res.writeHead(status, { 'content-type': 'application/json', trailer: TRAILER_NAME });
    x.res.write(data);
    x.res.addTrailers({ [TRAILER_NAME]: '1' });
    x.res.end();
    return;
  }
  x.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  x.res.end(data);
}

function openAiError(x: Exchange, status: number, message: string, type: string, param: string | null = null) {
  const code = status === 404 ? 'unknown_url' : null;
  sendJson(x, status, { error: { message, type, code, param } });
}

const badRequest = (x: Exchange, message: string, param: string | null = null) =>
  openAiError(x, 400, message, 'invalid_request_error', param);

/** Ollama's errors are {"error": "..."}. */
const ollamaError = (x: Exchange, status: number, message: string) => sendJson(x, status, { error: message });

/** Where to cut an event so the two halves split a multi-byte character: right after the lead byte
 * of the multi-byte character nearest the middle, else the middle byte. */
export function splitPoint(buf: Uint8Array): number {
  const mid = buf.length >> 1;
  let best = -1;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i]! >= 0xc0 && (best === -1 || Math.abs(i + 1 - mid) < Math.abs(best - mid))) best = i + 1;
  }
  return best === -1 ? Math.max(1, mid) : best;
}

/**
 * Writes a stream's events and ends the response. `delays[i]` ms pass before event i. With no
 * delays and no split, every write happens in this tick, so Node sends them in one TCP write.
 * p.contentLength: every event is built first and the length declared (one write when there is
 * no delay); p.trailers: the stream ends with the x-mock-done trailer.
 */
async function writeStream(x: Exchange, contentType: string, events: Event[], delays: number[], p: Plan) {
  const { res } = x;
  const split = p.split;
  if (x.closed) return;
  if (p.contentLength) {
    const texts = events.map((e) => Buffer.from(typeof e === 'string' ? e : e()));
    const whole = Buffer.concat(texts);
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache', 'content-length': whole.length });
    x.tHeaders = process.hrtime.bigint();
    if (delays.every((d) => d === 0) && !split) {
      res.end(whole);
      return;
    }
    events = texts.map((t) => t.toString());
  } else if (p.trailers) {
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache', trailer: TRAILER_NAME });
    x.tHeaders = process.hrtime.bigint();
  } else {
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache' });
    x.tHeaders = process.hrtime.bigint();
  }
  for (let i = 0; i < events.length; i++) {
    const delay = delays[i]!;
    if (delay > 0 && !(await wait(x, delay))) return;
    if (x.closed) return;
    const e = events[i]!;
    const text = typeof e === 'string' ? e : e();
    if (!split || text.length < 2) {
      res.write(text);
      continue;
    }
    const buf = Buffer.from(text);
    const at = splitPoint(buf);
    res.write(buf.subarray(0, at));
    if (!(await wait(x, 2))) return;
    res.write(buf.subarray(at));
  }
  if (x.closed) return;
  if (p.trailers && !p.contentLength) res.addTrailers({ [TRAILER_NAME]: '1' });
  res.end();
}

// ---------------------------------------------------------------------------------------------
// Endpoints

const MODEL_LIST = JSON.stringify({
  object: 'list',
  data: MODELS.map((id) => ({ id, object: 'model', created: MODELS_CREATED, owned_by: 'lm-gate-mock' })),
});

const TAGS = JSON.stringify({
  models: MODELS.map((name, i) => ({
    name,
    model: name,
    modified_at: '2024-01-01T00:00:00Z',
    size: (i + 1) * 1_000_000_000,
    digest: `${String(i + 1).repeat(64)}`,
    details: {
      parent_model: '',
      format: 'gguf',
      family: 'mock',
      families: ['mock'],
      parameter_size: i === 0 ? '1B' : '8B',
      quantization_level: 'Q4_0',
    },
  })),
});

const nowSeconds = () => Math.floor(Date.now() / 1000);

function usageOf(kind: ApiKind, body: Json, p: Plan) {
  const { prompt, completion } = counts(kind, body, p.pieces);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** POST /v1/chat/completions and /v1/completions. */
function openAiCompletion(chat: boolean): Handler {
  return (x, body, p) => {
    if (typeof body.model !== 'string') return badRequest(x, 'you must provide a model parameter', 'model');
    if (chat && !Array.isArray(body.messages))
      return badRequest(x, "Missing required parameter: 'messages'.", 'messages');
    if (!chat && typeof body.prompt !== 'string' && !Array.isArray(body.prompt))
      return badRequest(x, "Missing required parameter: 'prompt'.", 'prompt');
    if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
      return badRequest(x, "Invalid type for 'stream': expected a boolean.", 'stream');
    const so = body.stream_options;
    if (so !== undefined && so !== null) {
      if (!isObject(so))
        return badRequest(x, "Invalid type for 'stream_options': expected an object.", 'stream_options');
      if (body.stream !== true)
        return badRequest(
          x,
          "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
          'stream_options',
        );
    }

    const model = body.model;
    const usage = usageOf(chat ? 'openai.chat' : 'openai.completions', body, p);
    const id = `${chat ? 'chatcmpl' : 'cmpl'}-mock${x.seq}`;
    const created = nowSeconds();

    if (body.stream !== true) {
      const text = p.pieces.join('');
      return sendJson(
        x,
        200,
        {
          id,
          object: chat ? 'chat.completion' : 'text_completion',
          created,
          model,
          choices: [
            chat
              ? {
                  index: 0,
                  message: {
                    role: 'assistant',
                    content: text,
                    ...(p.reasoning === undefined ? {} : { reasoning_content: p.reasoning.join('') }),
                  },
                  finish_reason: 'stop',
                  logprobs: null,
                }
              : { index: 0, text, finish_reason: 'stop', logprobs: null },
          ],
          ...(p.usage === 'never' ? {} : { usage }),
        },
        p,
      );
    }

    const withUsage = p.usage === 'always' || (p.usage === 'auto' && isObject(so) && so.include_usage === true);
    // Every chunk shares this head and tail; only the choices differ.
    const head = `data: {"id":${JSON.stringify(id)},"object":"${chat ? 'chat.completion.chunk' : 'text_completion'}","created":${created},"model":${JSON.stringify(model)},"choices":`;
    const tail = withUsage ? ',"usage":null}\n\n' : '}\n\n';
    const choice = (delta: string, finish: boolean) =>
      `[{"index":0,${chat ? `"delta":${delta}` : `"text":${delta}`},"finish_reason":${finish ? '"stop"' : 'null'},"logprobs":null}]`;

    const events: Event[] = [];
    const delays: number[] = [];
    if (chat) {
      events.push(head + choice('{"role":"assistant","content":""}', false) + tail);
      delays.push(0);
      for (const r of p.reasoning ?? []) {
        events.push(head + choice(`{"reasoning_content":${JSON.stringify(r)}}`, false) + tail);
        delays.push(p.chunkDelayMs);
      }
    }
    const n = p.pieces.length;
    for (let i = 0; i < n; i++) {
      const piece = JSON.stringify(p.pieces[i]);
      const event = head + choice(chat ? `{"content":${piece}}` : piece, i === n - 1);
      events.push(p.stamp ? () => `${event},"x_mock_sent_ms":${wallMs().toFixed(3)}${tail}` : event + tail);
      delays.push(events.length === 1 ? 0 : p.chunkDelayMs);
    }
    if (n === 0) {
      // No content: the finish reason comes in a chunk of its own.
      events.push(head + choice(chat ? '{}' : '""', true) + tail);
      delays.push(0);
    }
    if (withUsage) {
      events.push(`${head}[],"usage":${JSON.stringify(usage)}}\n\n`);
      delays.push(0);
    }
    events.push('data: [DONE]\n\n');
    delays.push(0);
    return writeStream(x, 'text/event-stream', events, delays, p);
  };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** `dims` deterministic floats for a text, exactly representable as float32 (multiples of 2^-15);
 * the first eight do not depend on dims. */
function vector(text: string, dims: number): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  const out: number[] = new Array(dims);
  for (let k = 0; k < dims; k++) {
    // mulberry32
    h = (h + 0x6d2b79f5) | 0;
    let t = Math.imul(h ^ (h >>> 15), h | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[k] = (((t ^ (t >>> 14)) >>> 0) & 0xffff) / 32768 - 1;
  }
  return out;
}

export function mockEmbedding(input: string | number[], dims = DEFAULT_EMBEDDING_DIMS): number[] {
  return vector(typeof input === 'string' ? input : input.join(','), dims);
}

function base64Floats(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

const embeddings: Handler = (x, body, p) => {
  if (typeof body.model !== 'string') return badRequest(x, 'you must provide a model parameter', 'model');
  const input = body.input;
  let items: (string | number[])[];
  if (typeof input === 'string') items = [input];
  else if (Array.isArray(input) && input.length > 0 && input.every((v) => typeof v === 'string')) items = input;
  else if (Array.isArray(input) && input.length > 0 && input.every((v) => typeof v === 'number')) items = [input];
  else if (
    Array.isArray(input) &&
    input.length > 0 &&
    input.every((v) => Array.isArray(v) && v.every((t) => typeof t === 'number'))
  )
    items = input as number[][];
  else return badRequest(x, "'input' must be a string, an array of strings or an array of token arrays.", 'input');
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64')
    return badRequest(x, "'encoding_format' must be 'float' or 'base64'.", 'encoding_format');
  const { prompt } = counts('openai.embeddings', body, []);
  sendJson(
    x,
    200,
    {
      object: 'list',
      data: items.map((item, index) => {
        const v = mockEmbedding(item, p.embeddingDims);
        return { object: 'embedding', index, embedding: format === 'base64' ? base64Floats(v) : v };
      }),
      model: body.model,
      ...(p.usage === 'never' ? {} : { usage: { prompt_tokens: prompt, total_tokens: prompt } }),
    },
    p,
  );
};

/** POST /api/chat and /api/generate: NDJSON streams unless stream is false. */
function ollama(chat: boolean): Handler {
  return (x, body, p) => {
    if (typeof body.model !== 'string' || body.model === '') return ollamaError(x, 400, 'model is required');
    if (chat && body.messages !== undefined && body.messages !== null && !Array.isArray(body.messages))
      return ollamaError(x, 400, 'messages must be an array');
    if (!chat && body.prompt !== undefined && body.prompt !== null && typeof body.prompt !== 'string')
      return ollamaError(x, 400, 'prompt must be a string');

    const modelJson = JSON.stringify(body.model);
    const { prompt, completion } = counts(chat ? 'ollama.chat' : 'ollama.generate', body, p.pieces);
    const line = (content: string) =>
      chat
        ? `{"model":${modelJson},"created_at":"${new Date().toISOString()}","message":{"role":"assistant","content":${JSON.stringify(content)}},"done":false}\n`
        : `{"model":${modelJson},"created_at":"${new Date().toISOString()}","response":${JSON.stringify(content)},"done":false}\n`;
    // The done line, in Ollama's key order, with the durations (ns) measured on this request.
    const done = (content: string) => {
      const now = process.hrtime.bigint();
      const noCounts = p.usage === 'never';
      const metrics = {
        total_duration: Number(now - x.t0),
        load_duration: 100_000,
        ...(noCounts ? {} : { prompt_eval_count: prompt }),
        prompt_eval_duration: Number(x.tHeaders - x.t0),
        ...(noCounts ? {} : { eval_count: completion }),
        eval_duration: Number(now - x.tHeaders),
      };
      const createdAt = new Date().toISOString();
      return chat
        ? {
            model: body.model,
            created_at: createdAt,
            message: { role: 'assistant', content },
            done_reason: 'stop',
            done: true,
            ...metrics,
          }
        : { model: body.model, created_at: createdAt, response: content, done: true, done_reason: 'stop', ...metrics };
    };

    if (body.stream === false) {
      x.tHeaders = process.hrtime.bigint();
      return sendJson(x, 200, done(p.pieces.join('')), p);
    }
    const events: Event[] = [];
    const delays: number[] = [];
    for (let i = 0; i < completion; i++) {
      const piece = p.pieces[i]!;
      events.push(() => line(piece));
      delays.push(i === 0 ? 0 : p.chunkDelayMs);
    }
    events.push(() => `${JSON.stringify(done(''))}\n`);
    delays.push(0);
    return writeStream(x, 'application/x-ndjson', events, delays, p);
  };
}

/** The encoding the mock TGI server's model counts with: ground truth for the gate's tokenizer
 * fallback, which counts a call that names no model with its default encoding. */
export const TGI_MOCK_ENCODING: Encoding = 'o200k_base';

/** TGI's errors are {"error": "...", "error_type": "..."}. */
const tgiError = (x: Exchange, status: number, message: string) =>
  sendJson(x, status, { error: message, error_type: 'validation' });

/** POST /generate (whole), /generate_stream (SSE) and / (compat: SSE when stream is true). */
function tgi(mode: 'whole' | 'stream' | 'compat'): Handler {
  return (x, body, p) => {
    if (typeof body.inputs !== 'string') return tgiError(x, 422, 'Failed to deserialize the JSON body: inputs');
    const params = isObject(body.parameters) ? body.parameters : {};
    const kind = mode === 'stream' ? 'tgi.generate_stream' : 'tgi.generate';
    const prompt = tokenizerPromptTokens(kind, body, TGI_MOCK_ENCODING);
    const text = p.pieces.join('');
    const generated = completionTokensOfText(TGI_MOCK_ENCODING, text);
    const stream = mode === 'stream' || (mode === 'compat' && body.stream === true);
    if (!stream) {
      x.tHeaders = process.hrtime.bigint();
      const details =
        params.details === true
          ? {
              finish_reason: 'length',
              generated_tokens: generated,
              seed: null,
              prefill:
                params.decoder_input_details === true
                  ? Array.from({ length: prompt }, (_, i) => ({ id: i + 1, text: 'x', logprob: i === 0 ? null : -1 }))
                  : [],
              tokens: p.pieces.map((t, i) => ({ id: 100 + i, text: t, logprob: -0.5, special: false })),
            }
          : undefined;
      // TGI answers /generate with a one-element array from the compat route, an object from /generate.
      const answer = { generated_text: text, ...(details ? { details } : {}) };
      return sendJson(x, 200, mode === 'compat' ? [answer] : answer, p);
    }
    const events: Event[] = [];
    const delays: number[] = [];
    const token = (i: number, t: string, special: boolean) => ({ id: 100 + i, text: t, logprob: -0.5, special });
    p.pieces.forEach((piece, i) => {
      events.push(
        `data:${JSON.stringify({ index: i + 1, token: token(i, piece, false), top_tokens: null, generated_text: null, details: null })}\n\n`,
      );
      delays.push(i === 0 ? 0 : p.chunkDelayMs);
    });
    const details = {
      finish_reason: 'eos_token',
      generated_tokens: generated,
      ...(p.usage === 'never' ? {} : { input_length: prompt }),
      seed: null,
    };
    events.push(
      `data:${JSON.stringify({ index: p.pieces.length + 1, token: token(p.pieces.length, '</s>', true), top_tokens: null, generated_text: text, details })}\n\n`,
    );
    delays.push(p.chunkDelayMs);
    return writeStream(x, 'text/event-stream', events, delays, p);
  };
}

const POST: Record<string, Handler> = {
  '/generate': tgi('whole'),
  '/generate_stream': tgi('stream'),
  '/': tgi('compat'),
  '/v1/chat/completions': openAiCompletion(true),
  '/v1/completions': openAiCompletion(false),
  '/v1/embeddings': embeddings,
  '/api/chat': ollama(true),
  '/api/generate': ollama(false),
};
const OLLAMA_PATHS = new Set(['/api/chat', '/api/generate']);

async function respond(x: Exchange, method: string, path: string, json: unknown, p: Plan): Promise<void> {
  if (p.latencyMs > 0 && !(await wait(x, p.latencyMs))) return;
  if (x.closed) return;
  if (p.status !== undefined) return openAiError(x, p.status, 'mock error', 'server_error');

  if (method === 'GET') {
    if (path === '/v1/models') return sendRaw(x, 200, MODEL_LIST, p);
    if (path === '/api/tags') return sendRaw(x, 200, TAGS, p);
  }
  const handler = method === 'POST' ? POST[path] : undefined;
  if (!handler) return openAiError(x, 404, `Unknown request URL: ${method} ${path}.`, 'invalid_request_error');
  if (!isObject(json)) {
    const message = 'We could not parse the JSON body of your request: it must be a JSON object.';
    return OLLAMA_PATHS.has(path) ? ollamaError(x, 400, message) : badRequest(x, message);
  }
  return handler(x, json, p);
}

// ---------------------------------------------------------------------------------------------
// The server

function checkedOption(name: string, v: number | undefined, dflt: number, integer = false): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v)))
    throw new RangeError(`mock model: ${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${v}`);
  return v;
}

export function startMockModel(opts: MockOptions = {}): Promise<MockModel> {
  const host = opts.host ?? '127.0.0.1';
  let defaults: Defaults;
  try {
    defaults = {
      latencyMs: checkedOption('latencyMs', opts.latencyMs, 0),
      chunks: Math.min(MAX_CHUNKS, checkedOption('chunks', opts.chunks, 5, true)),
      chunkDelayMs: checkedOption('chunkDelayMs', opts.chunkDelayMs, 0),
    };
  } catch (err) {
    return Promise.reject(err);
  }
  const record = opts.record ?? true;
  const received: ReceivedRequest[] = [];
  let uploading = 0;
  let seq = 0;

  const server: Server = createServer((req, res) => {
    const x: Exchange = {
      res,
      closed: false,
      timer: undefined,
      wake: undefined,
      t0: process.hrtime.bigint(),
      tHeaders: 0n,
      seq: ++seq,
    };
    x.tHeaders = x.t0;
    res.on('close', () => {
      x.closed = true;
      if (x.timer !== undefined) clearTimeout(x.timer);
      x.timer = undefined;
      const wake = x.wake;
      x.wake = undefined;
      wake?.(false);
    });
    res.on('error', () => {}); // a write racing a reset socket: the close handler stops the rest
    req.on('error', () => {}); // a client gone mid-upload

    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    const target = () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      return q === -1 ? url : url.slice(0, q);
    };
    // An upload cut before its end (the client or Envoy reset it): recorded, never answered.
    uploading++;
    let uploaded = false;
    const doneUploading = () => {
      if (!uploaded) uploading--;
      uploaded = true;
    };
    req.on('close', () => {
      doneUploading();
      if (req.complete || !record) return;
      const body = Buffer.concat(parts);
      received.push({
        method: req.method ?? 'GET',
        path: target(),
        headers: { ...req.headers },
        body,
        json: undefined,
        complete: false,
      });
    });
    req.on('end', () => {
      doneUploading();
      const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      let json: unknown;
      if (body.length > 0) {
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined;
        }
      }
      const path = target();
      const method = req.method ?? 'GET';
      if (record) received.push({ method, path, headers: { ...req.headers }, body, json, complete: true });
      respond(x, method, path, json, plan(req, defaults)).catch(() => res.destroy());
    });
  });
  // Envoy pools upstream connections: keep them longer than its idle timeout would.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  let closing: Promise<void> | undefined;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
        port,
        received,
        get uploading() {
          return uploading;
        },
        reset: () => {
          received.length = 0;
        },
        close: () => {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8000' },
      host: { type: 'string', default: '127.0.0.1' },
      'latency-ms': { type: 'string', default: '0' },
      chunks: { type: 'string', default: '5' },
      'chunk-delay-ms': { type: 'string', default: '0' },
    },
  });
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const mock = await startMockModel({
    port: num('port', values.port),
    host: values.host,
    latencyMs: num('latency-ms', values['latency-ms']),
    chunks: num('chunks', values.chunks),
    chunkDelayMs: num('chunk-delay-ms', values['chunk-delay-ms']),
    record: false,
  });
  console.log(`mock model listening on ${mock.url}`);
  const stop = () => void mock.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
