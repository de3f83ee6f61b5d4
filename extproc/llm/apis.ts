// The LLM APIs the gate governs, in one table: how each is recognised, whether its body must be
// read, how it streams, where its usage is and whether the gate may ask for it, and which texts a
// content scanner must see. Path classification, the API-shape checks, metering, the config's
// endpoint names and (with DLP) the scanners all read this table; a new API is one row.
//
// OpenAI's API is what vLLM, TGI's Messages API, llama.cpp, LocalAI and most servers speak;
// Ollama's native API is the other one self-hosters run; Text Generation Inference's native API
// (/generate, /generate_stream) is the third, spoken by Hugging Face's own clients.

export interface ApiSpec {
  readonly kind: string;
  readonly family: 'openai' | 'ollama' | 'tgi';
  readonly method: 'POST' | 'GET';
  /** Exact paths, after the canonicalisation classifyPath applies (no query, trailing slash). */
  readonly paths: readonly string[];
  /** A path prefix followed by an id that may contain slashes (/v1/models/{id}). */
  readonly pathPrefix?: string;
  /** The JSON request body must be read to govern the call (model, stream flag). */
  readonly body: boolean;
  /** The body names the model (`model`, required). TGI serves one model and its body names none:
   * such a call is routed like a bodiless one (routing.default). */
  readonly namesModel: boolean;
  /** never: no streamed variant; opt_in: streams when the body says "stream": true (OpenAI);
   * by_default: streams unless "stream": false (Ollama chat and generate); always: the path
   * itself streams (TGI's /generate_stream). */
  readonly streams: 'never' | 'opt_in' | 'by_default' | 'always';
  /** opt_in on some paths only: the others ignore the body's stream flag and never stream (TGI's
   * /generate reads no `stream`; its compat routes do). Unset: every path reads it. */
  readonly streamFlagPaths?: readonly string[];
  /** The framing of a streamed response. */
  readonly streamFormat: 'sse' | 'ndjson' | undefined;
  /** Where upstream reports usage: OpenAI's `usage` object, Ollama's final record counts, or
   * TGI's `details` (generated_tokens, and input_length or the prefill tokens). */
  readonly usage: 'openai' | 'ollama' | 'tgi' | undefined;
  /** A streamed call reports usage only when asked (stream_options.include_usage), so the gate
   * may ask for it and withhold the answer from a client that did not. */
  readonly usageOnRequest: boolean;
  /** JSON paths of the request texts a content scanner must see ([] for none). */
  readonly requestTexts: readonly string[];
  /** JSON paths of the response texts a content scanner must see, per event or whole. */
  readonly responseTexts: readonly string[];
}

export const API_SPECS = [
  {
    kind: 'openai.chat',
    family: 'openai',
    method: 'POST',
    paths: ['/v1/chat/completions'],
    body: true,
    namesModel: true,
    streams: 'opt_in',
    streamFormat: 'sse',
    usage: 'openai',
    usageOnRequest: true,
    requestTexts: ['messages[].content', 'messages[].content[].text', 'tools[].function.description'],
    responseTexts: [
      'choices[].message.content',
      'choices[].delta.content',
      'choices[].delta.tool_calls[].function.arguments',
    ],
  },
  {
    kind: 'openai.completions',
    family: 'openai',
    method: 'POST',
    paths: ['/v1/completions'],
    body: true,
    namesModel: true,
    streams: 'opt_in',
    streamFormat: 'sse',
    usage: 'openai',
    usageOnRequest: true,
    requestTexts: ['prompt', 'prompt[]'],
    responseTexts: ['choices[].text'],
  },
  {
    kind: 'openai.embeddings',
    family: 'openai',
    method: 'POST',
    paths: ['/v1/embeddings'],
    body: true,
    namesModel: true,
    streams: 'never',
    streamFormat: undefined,
    usage: 'openai',
    usageOnRequest: false,
    requestTexts: ['input', 'input[]'],
    responseTexts: [],
  },
  {
    kind: 'openai.models',
    family: 'openai',
    method: 'GET',
    paths: ['/v1/models'],
    pathPrefix: '/v1/models/',
    body: false,
    namesModel: false,
    streams: 'never',
    streamFormat: undefined,
    usage: undefined,
    usageOnRequest: false,
    requestTexts: [],
    responseTexts: [],
  },
  {
    kind: 'ollama.chat',
    family: 'ollama',
    method: 'POST',
    paths: ['/api/chat'],
    body: true,
    namesModel: true,
    streams: 'by_default',
    streamFormat: 'ndjson',
    usage: 'ollama',
    usageOnRequest: false,
    requestTexts: ['messages[].content'],
    responseTexts: ['message.content'],
  },
  {
    kind: 'ollama.generate',
    family: 'ollama',
    method: 'POST',
    paths: ['/api/generate'],
    body: true,
    namesModel: true,
    streams: 'by_default',
    streamFormat: 'ndjson',
    usage: 'ollama',
    usageOnRequest: false,
    requestTexts: ['prompt', 'system'],
    responseTexts: ['response'],
  },
  {
    kind: 'ollama.embed',
    family: 'ollama',
    method: 'POST',
    // The legacy single-prompt endpoint gets the same governance as /api/embed.
    paths: ['/api/embed', '/api/embeddings'],
    body: true,
    namesModel: true,
    streams: 'never',
    streamFormat: undefined,
    usage: 'ollama',
    usageOnRequest: false,
    requestTexts: ['input', 'input[]', 'prompt'],
    responseTexts: [],
  },
  {
    kind: 'ollama.tags',
    family: 'ollama',
    method: 'GET',
    paths: ['/api/tags'],
    body: false,
    namesModel: false,
    streams: 'never',
    streamFormat: undefined,
    usage: undefined,
    usageOnRequest: false,
    requestTexts: [],
    responseTexts: [],
  },
  {
    kind: 'tgi.generate',
    family: 'tgi',
    method: 'POST',
    // `/` (and SageMaker's `/invocations`) is TGI's compat route: /generate, or /generate_stream
    // when the body says "stream": true. Governed as tgi.generate so that a rule on tgi.generate
    // cannot be skipped through it; huggingface_hub's InferenceClient posts there.
    paths: ['/generate', '/', '/invocations'],
    body: true,
    namesModel: false,
    streams: 'opt_in',
    streamFlagPaths: ['/', '/invocations'],
    streamFormat: 'sse',
    usage: 'tgi',
    usageOnRequest: false,
    requestTexts: ['inputs'],
    responseTexts: ['generated_text', 'token.text'],
  },
  {
    kind: 'tgi.generate_stream',
    family: 'tgi',
    method: 'POST',
    paths: ['/generate_stream'],
    body: true,
    namesModel: false,
    streams: 'always',
    streamFormat: 'sse',
    usage: 'tgi',
    usageOnRequest: false,
    requestTexts: ['inputs'],
    responseTexts: ['token.text', 'generated_text'],
  },
] as const satisfies readonly ApiSpec[];

export type KnownApiKind = (typeof API_SPECS)[number]['kind'];
export type ApiKind = KnownApiKind | 'unknown';

/** Every API kind, in table order: the config's endpoint names. */
export const API_KINDS = API_SPECS.map((s) => s.kind) as [KnownApiKind, ...KnownApiKind[]];

const BY_KIND: ReadonlyMap<string, ApiSpec> = new Map(API_SPECS.map((s) => [s.kind, s]));

export function apiSpec(kind: ApiKind): ApiSpec | undefined {
  return BY_KIND.get(kind);
}
