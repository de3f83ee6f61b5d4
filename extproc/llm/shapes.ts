// Which LLM API a request speaks, and its body checked. The gate governs OpenAI's API (what vLLM,
// TGI's Messages API, llama.cpp and most servers speak), Ollama's native API and TGI's native
// API (apis.ts). The body is
// scanned, never built: see json-scan.ts for what is refused and why (parser differentials).

import { API_SPECS, type ApiKind, apiSpec } from './apis.ts';
import { applyBodyEdits, type BodyEdit } from './body-edits.ts';
import { type JsonError, type JsonErrorCode, type JsonMember, JsonScanner, type JsonType } from './json-scan.ts';

export type { ApiKind } from './apis.ts';

/** POST and GET/HEAD paths from the API table, after canonicalisation. */
const POST_PATHS = new Map<string, ApiKind>();
const GET_PATHS = new Map<string, ApiKind>();
const GET_PREFIXES: [string, ApiKind][] = [];
for (const spec of API_SPECS) {
  const into = spec.method === 'POST' ? POST_PATHS : GET_PATHS;
  for (const p of spec.paths) into.set(p, spec.kind);
  if ('pathPrefix' in spec) GET_PREFIXES.push([spec.pathPrefix, spec.kind]);
}

// Anything an upstream might still route to an LLM endpoint after decoding or normalising it:
// percent-escapes, repeated slashes, dot segments, backslashes, upper case. Such a path would
// otherwise be 'unknown' to the gate and slip past model policy and metering while the server
// (uvicorn percent-decodes, some frameworks merge slashes or ignore case) still serves it.
const NEEDS_CANONICAL = /%|\/\/|\/\.|\\|[A-Z]/;

/** Classify by method and :path, ignoring the query string and trailing slashes. A path that
 * only reaches an LLM endpoint once decoded or normalised is classified as that endpoint: the
 * safe direction, as governing a request the server then 404s costs nothing. */
export function classifyPath(method: string, path: string): ApiKind {
  const p = apiPath(path);
  if (method === 'POST') return POST_PATHS.get(p) ?? 'unknown';
  if (method === 'GET' || method === 'HEAD') {
    const exact = GET_PATHS.get(p);
    if (exact !== undefined) return exact;
    // Model ids may contain slashes (Hugging Face ids like meta-llama/Llama-3.1-8B-Instruct).
    for (const [prefix, kind] of GET_PREFIXES) if (p.startsWith(prefix) && p.length > prefix.length) return kind;
  }
  return 'unknown';
}

/** The path as classifyPath reads it: no query, no trailing slash, canonical when it needs to be. */
export function apiPath(path: string): string {
  let p = path;
  const q = p.indexOf('?');
  if (q !== -1) p = p.slice(0, q);
  if (NEEDS_CANONICAL.test(p)) p = canonicalPath(p);
  let end = p.length;
  while (end > 1 && p.charCodeAt(end - 1) === 0x2f) end--;
  return end !== p.length ? p.slice(0, end) : p;
}

/** Whether the body's stream flag means anything on this path: not on a path of its kind that
 * ignores it (TGI's /generate answers whole whatever the body says). */
export function streamFlagRead(kind: ApiKind, path: string): boolean {
  const only = apiSpec(kind)?.streamFlagPaths;
  return only === undefined || only.includes(apiPath(path));
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
  return apiSpec(kind)?.body === true;
}

/** Nesting limit for request bodies: `[]` is 1 level, `{"messages":[{"content":[…]}]}` is 4. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface ParseLimits {
  /** Deepest nesting of arrays and objects accepted. */
  maxDepth: number;
  /** Find where a default max_tokens would go (ParsedRequest.maxTokensSlot): only when
   * policy.defaultMaxTokens is set, so no request pays for it otherwise. */
  maxTokensSlot?: boolean;
}

const DEFAULT_LIMITS: ParseLimits = { maxDepth: DEFAULT_MAX_JSON_DEPTH };

/** A value's bytes [start, end) in the canonical body. */
export interface Span {
  start: number;
  end: number;
}

/** Plain data (it crosses worker threads by structured clone). Offsets are relative to the
 * canonical body: the body without its UTF-8 BOM, which is what the gate forwards. */
export interface ParsedRequest {
  kind: ApiKind;
  /** Undefined for an API whose body names no model (TGI): no model rule or scope can admit it. */
  model: string | undefined;
  /** The model's JSON string (quotes included) in the canonical body, for a rewrite; undefined
   * when the body names none (TGI), and then the model is never rewritten. */
  modelSpan: Span | undefined;
  /** OpenAI: stream === true. Ollama chat/generate: streams unless stream === false. Embeddings:
   * false. */
  stream: boolean;
  /** Whether the client will see usage: always for non-streamed and Ollama responses; for OpenAI
   * streams only with stream_options.include_usage === true. */
  clientWantsUsage: boolean;
  /** 3 when the body began with a UTF-8 BOM, which the canonical body leaves out. */
  bomLength: 0 | 3;
  /** Offset of the `{` opening the body's object. */
  objectStart: number;
  /** OpenAI chat/completions: `stream_options` when it is an object or null. */
  streamOptions?: Span & { type: 'object' | 'null'; includeUsage?: Span };
  /** The most output tokens the request asks for: the larger of OpenAI's `max_tokens` and
   * `max_completion_tokens` (servers read either), Ollama's `options.num_predict` (negative:
   * unlimited), TGI's `parameters.max_new_tokens`. Undefined when the body sets none, and
   * upstream's default applies. */
  maxTokens: number | undefined;
  /** Where a default output-token limit (policy.defaultMaxTokens) is written when the body sets
   * none (or, Ollama, a negative num_predict: no limit): bytes [start, end) of the canonical body
   * become `before` + the limit + `after`. Only for APIs that generate. */
  maxTokensSlot?: MaxTokensSlot;
  /** Completions generated for one request, each up to maxTokens: the larger of OpenAI's `n` and
   * `best_of`, TGI's `parameters.best_of`; 1 when unset (Ollama has neither). */
  generations: number;
  /** The member that asks for per-token texts in the response (OpenAI's and Ollama's `logprobs`,
   * `top_logprobs`, vLLM's `prompt_logprobs`, TGI's `parameters.top_n_tokens`), when one does:
   * those texts repeat the answer in pieces no scan of one piece can judge (dlp.request). */
  tokenDetails?: string;
  /** The member that gives the model its input as token ids or embeddings rather than text:
   * completions' `prompt` or embeddings' `input` holding numbers or arrays of them, vLLM's
   * `prompt_embeds`, Ollama's `context` (the token ids of an earlier exchange). The model reads
   * them as text no scan of the body can see (dlp.request, guard.injection). */
  tokenInput?: string;
}

export interface MaxTokensSlot {
  start: number;
  end: number;
  before: string;
  after: string;
}

export type RequestErrorCode = JsonErrorCode | 'empty_body' | 'invalid_request';

export type RequestParseResult =
  | { ok: true; request: ParsedRequest }
  | { ok: false; code: RequestErrorCode; message: string; param: string | null };

const fail = (message: string, param: string | null = null, code: RequestErrorCode = 'invalid_request') =>
  ({ ok: false, code, message, param }) as const;

/** "a string", "an array", "null"… as OpenAI's own type errors name them. */
function typeName(t: JsonType): string {
  return t === 'null' ? 'null' : t === 'object' || t === 'array' ? `an ${t}` : `a ${t}`;
}

const missing = (param: string): RequestParseResult => fail(`Missing required parameter: '${param}'.`, param);
const wrongType = (param: string, expected: string, got: JsonType): RequestParseResult =>
  fail(`Invalid type for '${param}': expected ${expected}, but got ${typeName(got)} instead.`, param);

function isJsonWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** The API has a streamed variant (the body's stream flag means something). */
function streamsByKind(kind: ApiKind): boolean {
  const streams = apiSpec(kind)?.streams;
  return streams !== undefined && streams !== 'never';
}

const NOT_JSON = 'We could not parse the JSON body of your request: it is not valid JSON.';

function scanFailure(e: JsonError, limits: ParseLimits): RequestParseResult {
  const where = e.path === '' ? 'at the top level' : `at '${e.path}'`;
  const param = e.path === '' ? null : e.path;
  switch (e.code) {
    case 'invalid_json':
      return fail(NOT_JSON, null, e.code);
    case 'json_too_deep':
      return fail(
        `We could not parse the JSON body of your request: it nests arrays and objects more than ${limits.maxDepth} levels deep (${where}).`,
        param,
        e.code,
      );
    case 'duplicate_key':
      return fail(
        `The JSON body of your request repeats a key in one object (${where}); each key may appear only once.`,
        param,
        e.code,
      );
    case 'ambiguous_key':
      return fail(
        `The JSON body of your request has keys in one object that differ only in letter case (${where}); servers read such keys differently.`,
        param,
        e.code,
      );
    case 'invalid_utf8':
      return fail(`The request body is not valid UTF-8 (${where}).`, param, e.code);
  }
}

/** Top-level members (OpenAI, vLLM, Ollama) that ask for per-token texts in the response; vLLM's
 * return_token_ids gives each chunk's text as token ids, which a tokenizer reads back. */
const TOKEN_DETAILS = ['logprobs', 'top_logprobs', 'prompt_logprobs', 'return_token_ids'] as const;

/** The members of the top-level object the checks read. */
const READ = new Set([
  'model',
  'messages',
  'prompt',
  'input',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'options',
  'inputs',
  'parameters',
  'context',
  'prompt_embeds',
  'n',
  'best_of',
  ...TOKEN_DETAILS,
]);

/** Parse and check a request body without building it: one scan validates the JSON (strictly, see
 * json-scan.ts: no duplicate or case-ambiguous keys, no invalid UTF-8, bounded depth) and locates
 * the few members read here. Messages follow OpenAI's wording; the body is never echoed back (it
 * may hold anything, and error messages end up in logs). */
export function parseRequestBody(
  kind: ApiKind,
  body: Buffer,
  limits: ParseLimits = DEFAULT_LIMITS,
): RequestParseResult {
  // Some clients (PowerShell, .NET) send a UTF-8 BOM before the JSON text; the gate forwards the
  // body without it (Go's encoding/json refuses it, Python's json accepts it).
  const bomLength = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  const canonical = bomLength === 0 ? body : body.subarray(bomLength);
  let first = 0;
  while (first < canonical.length && isJsonWhitespace(canonical[first]!)) first++;
  if (first === canonical.length) return fail('The request body is empty; expected a JSON object.', null, 'empty_body');

  const m = new Map<string, JsonMember>();
  const scan = new JsonScanner({
    maxDepth: limits.maxDepth,
    onMember: (key, type, start, end) => {
      if (key !== undefined && READ.has(key)) m.set(key, { key, type, start, end });
    },
  });
  const error = scan.push(canonical) ?? scan.end();
  if (error !== undefined) return scanFailure(error, limits);
  const rootType = scan.rootType!;
  if (rootType !== 'object') return fail(`The request body must be a JSON object, but got ${typeName(rootType)}.`);

  // TGI serves one model and its body names none: a `model` member there is ignored by TGI, so
  // it is not read either (it must not pass for the model that answers).
  const model = apiSpec(kind)?.namesModel === false ? undefined : m.get('model');
  if (model === undefined && apiSpec(kind)?.namesModel !== false) return missing('model');
  if (model !== undefined && model.type !== 'string') return wrongType('model', 'a string', model.type);
  if (model !== undefined && model.end - model.start === 2)
    return fail("Invalid value for 'model': it must not be empty.", 'model');

  const absent = (key: string): boolean => {
    const v = m.get(key);
    return v === undefined || v.type === 'null';
  };
  switch (kind) {
    case 'openai.chat':
    case 'ollama.chat': {
      const messages = m.get('messages');
      if (messages === undefined || messages.type === 'null') return missing('messages');
      if (messages.type !== 'array') return wrongType('messages', 'an array', messages.type);
      break;
    }
    case 'openai.completions':
      if (absent('prompt')) return missing('prompt');
      break;
    case 'openai.embeddings':
      if (absent('input')) return missing('input');
      break;
    case 'ollama.embed':
      // /api/embed takes `input`; the legacy /api/embeddings takes `prompt`.
      if (absent('input') && absent('prompt')) return missing('input');
      break;
    case 'tgi.generate':
    case 'tgi.generate_stream': {
      // TGI's `inputs` is one string.
      const inputs = m.get('inputs');
      if (inputs === undefined || inputs.type === 'null') return missing('inputs');
      if (inputs.type !== 'string') return wrongType('inputs', 'a string', inputs.type);
      break;
    }
    // ollama.generate without a prompt only loads the model: allowed.
  }

  // `stream` and `stream_options` are only checked where they mean something; null is what
  // OpenAI's own schema allows for both ("boolean or null", "object or null") and means absent.
  const streaming = streamsByKind(kind);
  const s = m.get('stream');
  if (streaming && s !== undefined && s.type !== 'null' && s.type !== 'boolean')
    return wrongType('stream', 'a boolean', s.type);
  const family = apiSpec(kind)?.family;
  const ollama = family === 'ollama';
  const openai = family === 'openai';
  const so = m.get('stream_options');
  if (streaming && openai && so !== undefined && so.type !== 'null' && so.type !== 'object')
    return wrongType('stream_options', 'an object', so.type);

  // Output-token limits are policy input (request.max_tokens), so they are held to one reading:
  // a lax server (pydantic) reads "100000" or 1e5 as an integer, so anything but an integral
  // number is refused rather than judged as absent.
  let maxTokens: number | undefined;
  for (const param of openai ? ['max_tokens', 'max_completion_tokens'] : []) {
    const v = m.get(param);
    if (v === undefined || v.type === 'null') continue;
    const n = v.type === 'number' ? Number(canonical.toString('latin1', v.start, v.end)) : Number.NaN;
    if (!Number.isInteger(n)) return wrongType(param, 'an integer', v.type);
    maxTokens = maxTokens === undefined ? n : Math.max(maxTokens, n);
  }
  const options = m.get('options');
  if (ollama && options !== undefined && options.type !== 'null') {
    if (options.type !== 'object') return wrongType('options', 'an object', options.type);
    const np = numPredict(canonical, options, limits);
    if (typeof np === 'object') return wrongType('options.num_predict', 'an integer', np.invalid);
    maxTokens = np;
  }
  const parameters = m.get('parameters');
  if (family === 'tgi' && parameters !== undefined && parameters.type !== 'null') {
    if (parameters.type !== 'object') return wrongType('parameters', 'an object', parameters.type);
    const mnt = integerMember(canonical, parameters, 'max_new_tokens', limits);
    if (typeof mnt === 'object') return wrongType('parameters.max_new_tokens', 'an integer', mnt.invalid);
    maxTokens = mnt;
  }
  // How many completions are generated (limits reserve max_tokens for each): held to one reading
  // like max_tokens.
  let generations = 1;
  for (const param of openai ? ['n', 'best_of'] : []) {
    const v = m.get(param);
    if (v === undefined || v.type === 'null') continue;
    const n = v.type === 'number' ? Number(canonical.toString('latin1', v.start, v.end)) : Number.NaN;
    if (!Number.isInteger(n)) return wrongType(param, 'an integer', v.type);
    generations = Math.max(generations, n);
  }
  if (family === 'tgi' && parameters !== undefined && parameters.type === 'object') {
    const bo = integerMember(canonical, parameters, 'best_of', limits);
    if (typeof bo === 'object') return wrongType('parameters.best_of', 'an integer', bo.invalid);
    if (bo !== undefined) generations = Math.max(generations, bo);
  }
  let tokenDetails: string | undefined;
  if (family === 'tgi') {
    if (parameters !== undefined && parameters.type === 'object') {
      const n = memberOf(canonical, parameters, 'top_n_tokens', limits);
      if (n !== undefined && asksFor(canonical, n, 'falsy')) tokenDetails = 'parameters.top_n_tokens';
    }
  } else {
    for (const key of TOKEN_DETAILS) {
      const v = m.get(key);
      if (v !== undefined && asksFor(canonical, v, offValues(kind, key))) {
        tokenDetails = key;
        break;
      }
    }
  }

  const request: ParsedRequest = {
    kind,
    model: model === undefined ? undefined : decodeString(canonical, model),
    modelSpan: model === undefined ? undefined : { start: model.start, end: model.end },
    stream: false,
    clientWantsUsage: true,
    bomLength,
    objectStart: scan.rootStart,
    maxTokens,
    generations,
  };
  if (tokenDetails !== undefined) request.tokenDetails = tokenDetails;
  if (limits.maxTokensSlot === true) {
    const slot = maxTokensSlotOf(kind, canonical, m, maxTokens, scan.rootStart, limits);
    if (slot !== undefined) request.maxTokensSlot = slot;
  }
  const tokenInput = tokenInputOf(kind, canonical, m);
  if (tokenInput !== undefined) request.tokenInput = tokenInput;
  if (streaming) {
    const isTrue = s !== undefined && s.type === 'boolean' && canonical[s.start] === 0x74;
    const streams = apiSpec(kind)?.streams;
    if (streams === 'always') request.stream = true;
    else if (ollama) request.stream = !(s !== undefined && s.type === 'boolean' && !isTrue);
    else if (!openai) request.stream = isTrue;
    else {
      request.stream = isTrue;
      let includeUsage = false;
      if (so !== undefined) [request.streamOptions, includeUsage] = streamOptions(canonical, so, limits);
      if (request.stream) request.clientWantsUsage = includeUsage;
    }
  }
  return { ok: true, request };
}

/** Which values leave a token-details option off, besides null. Chat's and Ollama's `logprobs` is
 * a boolean (a lax server reads 0 as false); top_logprobs and top_n_tokens count alternatives (0:
 * none); but completions' `logprobs: 0` and vLLM's `prompt_logprobs: 0` still return each
 * sampled token, and a lax server reads false there as 0. */
type OffValues = 'falsy' | 'null';
function offValues(kind: ApiKind, key: (typeof TOKEN_DETAILS)[number]): OffValues {
  if (key === 'prompt_logprobs') return 'null';
  if (key === 'logprobs' && kind === 'openai.completions') return 'null';
  return 'falsy';
}

/** Whether a member's value turns an option on. A lax server reads "true" or "1" as on, so only
 * null (and, where it means off, false or 0) counts as off. */
function asksFor(body: Buffer, v: Span & { type: JsonType }, off: OffValues): boolean {
  if (v.type === 'null') return false;
  if (off === 'null') return true;
  if (v.type === 'boolean') return body[v.start] === 0x74;
  if (v.type === 'number') return Number(body.toString('latin1', v.start, v.end)) !== 0;
  return true;
}

/** Which member, if any, gives the model token ids or embeddings instead of text (see
 * ParsedRequest.tokenInput). Null and an empty list give nothing. */
function tokenInputOf(kind: ApiKind, body: Buffer, m: ReadonlyMap<string, JsonMember>): string | undefined {
  const given = (key: string): boolean => {
    const v = m.get(key);
    return v !== undefined && v.type !== 'null' && !(v.type === 'array' && emptyContainer(body, v));
  };
  switch (kind) {
    case 'openai.completions':
      if (holdsTokenIds(body, m.get('prompt'))) return 'prompt';
      return given('prompt_embeds') ? 'prompt_embeds' : undefined;
    case 'openai.embeddings':
      return holdsTokenIds(body, m.get('input')) ? 'input' : undefined;
    case 'ollama.generate':
      return given('context') ? 'context' : undefined;
    default:
      return undefined;
  }
}

/** An array value with a number or a nested array outside its strings: token ids (`[1, 2]`,
 * `[[1, 2], [3]]`, or mixed with texts, which a lax server may take). The value was validated. */
function holdsTokenIds(body: Buffer, v: JsonMember | undefined): boolean {
  if (v === undefined || v.type !== 'array') return false;
  for (let i = v.start + 1; i < v.end - 1; i++) {
    const c = body[i]!;
    if (c === 0x22) {
      // Past the string (found natively: a prompt's texts are most of its bytes); a quote after
      // an odd run of backslashes is escaped.
      let j = i + 1;
      for (;;) {
        j = body.indexOf(0x22, j);
        if (j === -1 || j >= v.end) return false;
        let slashes = 0;
        while (body[j - 1 - slashes] === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
        j++;
      }
      i = j;
    } else if (c === 0x5b || c === 0x2d || (c >= 0x30 && c <= 0x39)) return true;
  }
  return false;
}

/** `[]` or `{}`, whitespace aside. */
function emptyContainer(body: Buffer, v: Span): boolean {
  for (let i = v.start + 1; i < v.end - 1; i++) if (!isJsonWhitespace(body[i]!)) return false;
  return true;
}

/** Where a default max_tokens goes (ParsedRequest.maxTokensSlot): the null (or, Ollama, negative)
 * value there is, or a new member; OpenAI's `max_tokens`, Ollama's `options.num_predict`, TGI's
 * `parameters.max_new_tokens`. The body's object holds at least one member (the model, the
 * prompt), so a member inserted first is followed by a comma. */
function maxTokensSlotOf(
  kind: ApiKind,
  body: Buffer,
  m: ReadonlyMap<string, JsonMember>,
  maxTokens: number | undefined,
  objectStart: number,
  limits: ParseLimits,
): MaxTokensSlot | undefined {
  const first = objectStart + 1;
  const nested = (holder: string, name: string): MaxTokensSlot => {
    const o = m.get(holder);
    if (o === undefined) return { start: first, end: first, before: `"${holder}":{"${name}":`, after: '},' };
    if (o.type === 'null') return { start: o.start, end: o.end, before: `{"${name}":`, after: '}' };
    const v = memberOf(body, o, name, limits);
    if (v !== undefined) return { start: v.start, end: v.end, before: '', after: '' };
    return { start: o.start + 1, end: o.start + 1, before: `"${name}":`, after: emptyContainer(body, o) ? '' : ',' };
  };
  switch (kind) {
    case 'openai.chat':
    case 'openai.completions': {
      if (maxTokens !== undefined) return undefined;
      const v = m.get('max_tokens') ?? m.get('max_completion_tokens');
      if (v !== undefined) return { start: v.start, end: v.end, before: '', after: '' };
      return { start: first, end: first, before: '"max_tokens":', after: ',' };
    }
    case 'ollama.chat':
    case 'ollama.generate':
      return maxTokens !== undefined && maxTokens >= 0 ? undefined : nested('options', 'num_predict');
    case 'tgi.generate':
    case 'tgi.generate_stream':
      return maxTokens !== undefined ? undefined : nested('parameters', 'max_new_tokens');
    default:
      return undefined;
  }
}

/** A member of an object member (already validated as an object), its span in the body. */
function memberOf(body: Buffer, obj: JsonMember, name: string, limits: ParseLimits): JsonMember | undefined {
  let out: JsonMember | undefined;
  const inner = new JsonScanner({
    maxDepth: limits.maxDepth,
    onMember: (key, type, start, end) => {
      if (key === name) out = { key, type, start: obj.start + start, end: obj.start + end };
    },
  });
  inner.push(body.subarray(obj.start, obj.end));
  inner.end();
  return out;
}

/** A string member's value (its span includes the quotes). */
function decodeString(body: Buffer, v: Span): string {
  const inner = body.subarray(v.start + 1, v.end - 1);
  return inner.includes(0x5c) ? (JSON.parse(body.toString('utf8', v.start, v.end)) as string) : inner.toString('utf8');
}

/** stream_options (already validated: an object or null): its spans, and whether include_usage
 * is true. */
function streamOptions(
  body: Buffer,
  so: JsonMember,
  limits: ParseLimits,
): [NonNullable<ParsedRequest['streamOptions']>, boolean] {
  if (so.type === 'null') return [{ start: so.start, end: so.end, type: 'null' }, false];
  let includeUsage: Span | undefined;
  let isTrue = false;
  // A second scan of just this value (small, and valid as part of the body) for its members.
  const inner = new JsonScanner({
    maxDepth: limits.maxDepth,
    onMember: (key, type, start, end) => {
      if (key !== 'include_usage') return;
      includeUsage = { start: so.start + start, end: so.start + end };
      isTrue = type === 'boolean' && body[so.start + start] === 0x74;
    },
  });
  inner.push(body.subarray(so.start, so.end));
  inner.end();
  const value = { start: so.start, end: so.end, type: 'object' as const };
  return [includeUsage === undefined ? value : { ...value, includeUsage }, isTrue];
}

/** Ollama's options.num_predict (options already validated as an object): the integer, undefined
 * when absent or null, or the type it wrongly has. */
function numPredict(
  body: Buffer,
  options: JsonMember,
  limits: ParseLimits,
): number | undefined | { invalid: JsonType } {
  return integerMember(body, options, 'num_predict', limits);
}

/** An integer member of an object member (already validated as an object): Ollama's
 * options.num_predict, TGI's parameters.max_new_tokens. The integer, undefined when absent or
 * null, or the type it wrongly has. */
function integerMember(
  body: Buffer,
  options: JsonMember,
  name: string,
  limits: ParseLimits,
): number | undefined | { invalid: JsonType } {
  let out: number | undefined | { invalid: JsonType };
  const inner = new JsonScanner({
    maxDepth: limits.maxDepth,
    onMember: (key, type, start, end) => {
      // onMember reports the scanned object's own members only, not nested ones.
      if (key !== name || type === 'null') return;
      const n =
        type === 'number' ? Number(body.toString('latin1', options.start + start, options.start + end)) : Number.NaN;
      out = Number.isInteger(n) ? n : { invalid: type };
    },
  });
  inner.push(body.subarray(options.start, options.end));
  inner.end();
  return out;
}

const INCLUDE_USAGE_MEMBER = Buffer.from('"stream_options":{"include_usage":true},');
const INCLUDE_USAGE_OBJECT = Buffer.from('{"include_usage":true}');
const INCLUDE_USAGE_FIRST = Buffer.from('"include_usage":true');
const INCLUDE_USAGE_BEFORE = Buffer.from('"include_usage":true,');
const TRUE = Buffer.from('true');

/** For an OpenAI chat/completions stream whose client did not ask for usage: the edit that sets
 * stream_options.include_usage = true (other stream_options members kept), so upstream reports
 * usage; otherwise undefined.
 *
 * Always a splice of the canonical body (the body without its BOM, as parsed): every other byte is
 * kept. Re-serialising through JSON.parse/stringify would round integers beyond 2^53 (a 64-bit
 * `seed`), rewrite number spellings, and overflow the stack on deep bodies. */
export function streamUsageEdit(request: ParsedRequest, canonicalBody: Buffer): BodyEdit | undefined {
  if (request.kind !== 'openai.chat' && request.kind !== 'openai.completions') return undefined;
  if (!request.stream || request.clientWantsUsage) return undefined;
  const body = canonicalBody;
  const at = (start: number, end: number, insert: Buffer): BodyEdit => ({ start, end, insert });
  const so = request.streamOptions;
  if (so === undefined) {
    expectByte(body, request.objectStart, 0x7b);
    // The object has at least `model`, so a member always follows the inserted one.
    return at(request.objectStart + 1, request.objectStart + 1, INCLUDE_USAGE_MEMBER);
  }
  if (so.type === 'null') {
    expectByte(body, so.start, 0x6e);
    return at(so.start, so.end, INCLUDE_USAGE_OBJECT);
  }
  expectByte(body, so.start, 0x7b);
  if (so.includeUsage !== undefined) return at(so.includeUsage.start, so.includeUsage.end, TRUE);
  let i = so.start + 1;
  while (i < so.end && isJsonWhitespace(body[i]!)) i++;
  const empty = body[i] === 0x7d;
  return at(so.start + 1, so.start + 1, empty ? INCLUDE_USAGE_FIRST : INCLUDE_USAGE_BEFORE);
}

/** streamUsageEdit applied: the whole new body (a body still carrying its BOM is accepted and
 * returned without it). */
export function bodyWithStreamUsage(request: ParsedRequest, body: Buffer): Buffer | undefined {
  const canonical =
    body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
  const edit = streamUsageEdit(request, canonical);
  return edit === undefined ? undefined : applyBodyEdits(canonical, [edit]);
}

/** The spans must point into the body they were parsed from: refuse to splice anything else. */
function expectByte(body: Buffer, at: number, byte: number): void {
  if (body[at] !== byte) throw new Error('streamUsageEdit: the body is not the one the request was parsed from');
}
