// Which LLM API a request speaks, and its body parsed and checked. The gate governs OpenAI's
// API (what vLLM, TGI's Messages API, llama.cpp and most servers speak) and Ollama's native API.
// Runs once per request, never per chunk: clarity wins over micro-speed here.

export type ApiKind =
  | 'openai.chat'
  | 'openai.completions'
  | 'openai.embeddings'
  | 'openai.models'
  | 'ollama.chat'
  | 'ollama.generate'
  | 'ollama.embed'
  | 'ollama.tags'
  | 'unknown';

const POST_PATHS: ReadonlyMap<string, ApiKind> = new Map<string, ApiKind>([
  ['/v1/chat/completions', 'openai.chat'],
  ['/v1/completions', 'openai.completions'],
  ['/v1/embeddings', 'openai.embeddings'],
  ['/api/chat', 'ollama.chat'],
  ['/api/generate', 'ollama.generate'],
  ['/api/embed', 'ollama.embed'],
  // The legacy single-prompt endpoint: same governance as /api/embed.
  ['/api/embeddings', 'ollama.embed'],
]);

const MODELS_PREFIX = '/v1/models/';

// Anything an upstream might still route to an LLM endpoint after decoding or normalising it:
// percent-escapes, repeated slashes, dot segments, backslashes, upper case. Such a path would
// otherwise be 'unknown' to the gate and slip past model policy and metering while the server
// (uvicorn percent-decodes, some frameworks merge slashes or ignore case) still serves it.
const NEEDS_CANONICAL = /%|\/\/|\/\.|\\|[A-Z]/;

/** Classify by method and :path, ignoring the query string and trailing slashes. A path that
 * only reaches an LLM endpoint once decoded or normalised is classified as that endpoint: the
 * safe direction, as governing a request the server then 404s costs nothing. */
export function classifyPath(method: string, path: string): ApiKind {
  let p = path;
  const q = p.indexOf('?');
  if (q !== -1) p = p.slice(0, q);
  if (NEEDS_CANONICAL.test(p)) p = canonicalPath(p);
  let end = p.length;
  while (end > 1 && p.charCodeAt(end - 1) === 0x2f) end--;
  if (end !== p.length) p = p.slice(0, end);

  if (method === 'POST') return POST_PATHS.get(p) ?? 'unknown';
  if (method === 'GET' || method === 'HEAD') {
    // Model ids may contain slashes (Hugging Face ids like meta-llama/Llama-3.1-8B-Instruct).
    if (p === '/v1/models' || (p.startsWith(MODELS_PREFIX) && p.length > MODELS_PREFIX.length)) return 'openai.models';
    if (p === '/api/tags') return 'ollama.tags';
  }
  return 'unknown';
}

/** Percent-decoded, lower-cased, backslashes as slashes, empty and dot segments resolved. */
function canonicalPath(path: string): string {
  let p = path;
  if (p.includes('%')) {
    try {
      p = decodeURIComponent(p);
    } catch {
      // Malformed escapes: classify the path as written.
    }
  }
  p = p.replaceAll('\\', '/').toLowerCase();
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/** Kinds whose POST body must be read to govern the request. */
export function needsBody(kind: ApiKind): boolean {
  switch (kind) {
    case 'openai.chat':
    case 'openai.completions':
    case 'openai.embeddings':
    case 'ollama.chat':
    case 'ollama.generate':
    case 'ollama.embed':
      return true;
    default:
      return false;
  }
}

export interface ParsedRequest {
  kind: ApiKind;
  model: string | undefined;
  /** OpenAI: stream === true. Ollama chat/generate: streams unless stream === false. Embeddings:
   * false. */
  stream: boolean;
  /** Whether the client will see usage: always for non-streamed and Ollama responses; for OpenAI
   * streams only with stream_options.include_usage === true. */
  clientWantsUsage: boolean;
  /** The parsed JSON object. */
  body: Record<string, unknown>;
}

export type RequestParseResult =
  | { ok: true; request: ParsedRequest }
  | { ok: false; message: string; param: string | null };

const fail = (message: string, param: string | null = null): RequestParseResult => ({ ok: false, message, param });

/** "a string", "an array", "null"… as OpenAI's own type errors name them. */
function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : `a ${t}`;
}

const missing = (param: string): RequestParseResult => fail(`Missing required parameter: '${param}'.`, param);
const wrongType = (param: string, expected: string, got: unknown): RequestParseResult =>
  fail(`Invalid type for '${param}': expected ${expected}, but got ${typeName(got)} instead.`, param);

function isJsonWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function streamsByKind(kind: ApiKind): boolean {
  return (
    kind === 'openai.chat' || kind === 'openai.completions' || kind === 'ollama.chat' || kind === 'ollama.generate'
  );
}

/** Parse and check a request body. Messages follow OpenAI's wording; the body is never echoed
 * back (it may hold anything, and error messages end up in logs). */
export function parseRequestBody(kind: ApiKind, body: Buffer): RequestParseResult {
  // Some clients (PowerShell, .NET) send a UTF-8 BOM before the JSON text.
  let start = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (start < body.length && isJsonWhitespace(body[start]!)) start++;
  if (start === body.length) return fail('The request body is empty; expected a JSON object.');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8', start));
  } catch {
    return fail('We could not parse the JSON body of your request: it is not valid JSON.');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return fail(`The request body must be a JSON object, but got ${typeName(json)}.`);
  const b = json as Record<string, unknown>;

  if (b.model === undefined) return missing('model');
  if (typeof b.model !== 'string') return wrongType('model', 'a string', b.model);
  if (b.model.length === 0) return fail("Invalid value for 'model': it must not be empty.", 'model');

  switch (kind) {
    case 'openai.chat':
    case 'ollama.chat':
      if (b.messages === undefined || b.messages === null) return missing('messages');
      if (!Array.isArray(b.messages)) return wrongType('messages', 'an array', b.messages);
      break;
    case 'openai.completions':
      if (b.prompt === undefined || b.prompt === null) return missing('prompt');
      break;
    case 'openai.embeddings':
      if (b.input === undefined || b.input === null) return missing('input');
      break;
    case 'ollama.embed':
      // /api/embed takes `input`; the legacy /api/embeddings takes `prompt`.
      if ((b.input === undefined || b.input === null) && (b.prompt === undefined || b.prompt === null))
        return missing('input');
      break;
    // ollama.generate without a prompt only loads the model: allowed.
  }

  // `stream` and `stream_options` are only checked where they mean something; null is what
  // OpenAI's own schema allows for both ("boolean or null", "object or null") and means absent.
  const streaming = streamsByKind(kind);
  if (streaming && b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean')
    return wrongType('stream', 'a boolean', b.stream);
  const ollama = kind.startsWith('ollama.');
  const so = b.stream_options;
  if (streaming && !ollama && so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so)))
    return wrongType('stream_options', 'an object', so);

  let stream = false;
  let clientWantsUsage = true;
  if (streaming) {
    if (ollama) stream = b.stream !== false;
    else {
      stream = b.stream === true;
      if (stream) clientWantsUsage = (so as Record<string, unknown> | null | undefined)?.include_usage === true;
    }
  }
  return { ok: true, request: { kind, model: b.model, stream, clientWantsUsage, body: b } };
}

const INCLUDE_USAGE = Buffer.from('"stream_options":{"include_usage":true},');

/** For an OpenAI chat/completions stream whose client did not ask for usage: the body with
 * stream_options.include_usage = true (other stream_options keys kept), so upstream reports
 * usage; otherwise undefined.
 *
 * Given the request's original bytes (`raw`) and no stream_options in it, the key is spliced
 * in and every other byte is kept: re-serialising through JSON.parse/stringify would silently
 * round integers beyond 2^53 (a 64-bit `seed`) and rewrite number spellings. Without `raw`, or
 * when stream_options exists and must be merged, the body is re-serialised. */
export function bodyWithStreamUsage(request: ParsedRequest, raw?: Buffer): Buffer | undefined {
  if (request.kind !== 'openai.chat' && request.kind !== 'openai.completions') return undefined;
  if (!request.stream || request.clientWantsUsage) return undefined;
  const so = request.body.stream_options;
  if (raw !== undefined && !Object.hasOwn(request.body, 'stream_options')) {
    const brace = openingBrace(raw);
    // The object has at least `model`, so a member always follows the inserted one.
    if (brace !== -1) return Buffer.concat([raw.subarray(0, brace + 1), INCLUDE_USAGE, raw.subarray(brace + 1)]);
  }
  const options = so !== null && typeof so === 'object' ? (so as Record<string, unknown>) : {};
  return Buffer.from(JSON.stringify({ ...request.body, stream_options: { ...options, include_usage: true } }));
}

/** Offset of the `{` that opens a JSON object text (after an optional BOM and whitespace), or -1. */
function openingBrace(raw: Buffer): number {
  let i = raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
  while (i < raw.length && isJsonWhitespace(raw[i]!)) i++;
  return raw[i] === 0x7b ? i : -1;
}
