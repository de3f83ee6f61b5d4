// The LLM APIs the gate governs, in one table: how each is recognised, whether its body must be
// read, how it streams, where its usage is and whether the gate may ask for it, and which texts a
// content scanner must see. Path classification, the API-shape checks, metering, the config's
// endpoint names and (with DLP) the scanners all read this table; a new API is one row.
//
// OpenAI's API is what vLLM, TGI's Messages API, llama.cpp, LocalAI and most servers speak;
// Ollama's native API is the other one self-hosters run.

export interface ApiSpec {
  readonly kind: string;
  readonly family: 'openai' | 'ollama';
  readonly method: 'POST' | 'GET';
  /** Exact paths, after the canonicalisation classifyPath applies (no query, trailing slash). */
  readonly paths: readonly string[];
  /** A path prefix followed by an id that may contain slashes (/v1/models/{id}). */
  readonly pathPrefix?: string;
  /** The JSON request body must be read to govern the call (model, stream flag). */
  readonly body: boolean;
  /** never: no streamed variant; opt_in: streams when the body says "stream": true (OpenAI);
   * by_default: streams unless "stream": false (Ollama chat and generate). */
  readonly streams: 'never' | 'opt_in' | 'by_default';
  /** The framing of a streamed response. */
  readonly streamFormat: 'sse' | 'ndjson' | undefined;
  /** Where upstream reports usage: OpenAI's `usage` object, or Ollama's final record counts. */
  readonly usage: 'openai' | 'ollama' | undefined;
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
    streams: 'never',
    streamFormat: undefined,
    usage: undefined,
    usageOnRequest: false,
    requestTexts: [],
    responseTexts: [],
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
