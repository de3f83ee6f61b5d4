// Which LLM API a request speaks, and its body parsed and checked. The gate governs OpenAI's
// API (what vLLM, TGI's Messages API, llama.cpp and most servers speak) and Ollama's native API.

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

const POST_PATHS: Record<string, ApiKind> = {
  '/v1/chat/completions': 'openai.chat',
  '/v1/completions': 'openai.completions',
  '/v1/embeddings': 'openai.embeddings',
  '/api/chat': 'ollama.chat',
  '/api/generate': 'ollama.generate',
  '/api/embed': 'ollama.embed',
  '/api/embeddings': 'ollama.embed',
};

/** Classify by method and :path, ignoring the query string and one trailing slash. */
export function classifyPath(method: string, path: string): ApiKind {
  let p = path;
  const q = p.indexOf('?');
  if (q !== -1) p = p.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (method === 'POST') return POST_PATHS[p] ?? 'unknown';
  if (method === 'GET' || method === 'HEAD') {
    if (p === '/v1/models' || (p.startsWith('/v1/models/') && p.length > 11 && !p.slice(11).includes('/')))
      return 'openai.models';
    if (p === '/api/tags') return 'ollama.tags';
  }
  return 'unknown';
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
  /** OpenAI: stream === true. Ollama chat/generate stream unless stream === false. */
  stream: boolean;
  /** Whether the client will see usage: always for non-streamed and Ollama responses; for OpenAI
   * streams only with stream_options.include_usage === true. */
  clientWantsUsage: boolean;
  body: Record<string, unknown>;
}

export type RequestParseResult =
  | { ok: true; request: ParsedRequest }
  | { ok: false; message: string; param: string | null };

const fail = (message: string, param: string | null = null): RequestParseResult => ({ ok: false, message, param });

/** Parse and check a request body. Messages are ours; the body is never echoed back. */
export function parseRequestBody(kind: ApiKind, body: Buffer): RequestParseResult {
  // A UTF-8 BOM is legal at the start of a JSON text sent by some clients.
  const start = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  if (body.length - start === 0) return fail('The request body is empty; expected a JSON object.');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8', start));
  } catch {
    return fail('The request body is not valid JSON.');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return fail('The request body must be a JSON object.');
  const b = json as Record<string, unknown>;

  if (typeof b.model !== 'string' || b.model.length === 0)
    return fail('The "model" field is required and must be a string.', 'model');
  if (b.stream !== undefined && typeof b.stream !== 'boolean') return fail('"stream" must be a boolean.', 'stream');
  const so = b.stream_options;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so)))
    return fail('"stream_options" must be an object.', 'stream_options');

  const ollama = kind.startsWith('ollama.');
  switch (kind) {
    case 'openai.chat':
    case 'ollama.chat':
      if (!Array.isArray(b.messages)) return fail('The "messages" field is required and must be an array.', 'messages');
      break;
    case 'openai.completions':
      if (b.prompt === undefined) return fail('The "prompt" field is required.', 'prompt');
      break;
    case 'openai.embeddings':
      if (b.input === undefined) return fail('The "input" field is required.', 'input');
      break;
    case 'ollama.embed':
      if (b.input === undefined && b.prompt === undefined) return fail('The "input" field is required.', 'input');
      break;
    // ollama.generate without a prompt loads the model: allowed.
  }

  let stream: boolean;
  let clientWantsUsage = true;
  if (kind === 'openai.embeddings' || kind === 'ollama.embed') stream = false;
  else if (ollama) stream = b.stream !== false;
  else {
    stream = b.stream === true;
    if (stream) clientWantsUsage = (so as Record<string, unknown> | undefined | null)?.include_usage === true;
  }
  return { ok: true, request: { kind, model: b.model, stream, clientWantsUsage, body: b } };
}

/** For an OpenAI stream whose client did not ask for usage: the body with
 * stream_options.include_usage = true (other stream_options kept); otherwise undefined. */
export function bodyWithStreamUsage(request: ParsedRequest): Buffer | undefined {
  if (!request.stream || request.clientWantsUsage) return undefined;
  if (request.kind !== 'openai.chat' && request.kind !== 'openai.completions') return undefined;
  const so = request.body.stream_options;
  const body = {
    ...request.body,
    stream_options: { ...(so && typeof so === 'object' ? so : {}), include_usage: true },
  };
  return Buffer.from(JSON.stringify(body));
}
