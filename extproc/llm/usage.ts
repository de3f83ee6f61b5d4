// Token usage as upstream reports it, from whole JSON responses, and the response formats the
// gate knows how to read. Absent usage stays absent (undefined), never zero: a metering record
// that says 0 tokens when the server said nothing would be a lie that quotas then trust.
import { createJsonUsageReader } from './json-usage-reader.ts';
import type { ApiKind } from './shapes.ts';

/** Where counts came from: upstream reported them; the gate counted them with the model's own
 * tokenizer; or the gate estimated them (a tokenizer that is not the model's, or a stream cut
 * short, whose upstream count never came). */
export type UsageSource = 'upstream' | 'tokenizer' | 'estimated';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  source: UsageSource;
  /** Input tokens upstream served from its prompt cache (OpenAI and vLLM
   * usage.prompt_tokens_details.cached_tokens), when it says; part of inputTokens. */
  cachedInputTokens?: number;
}

export type ResponseFormat = 'sse' | 'ndjson' | 'json' | 'other';

/** From a Content-Type value: case-insensitive, parameters (charset…) ignored. */
/** Whether a Content-Type declares no charset or only UTF-8: bytes the gate decodes as UTF-8 are
 * then the text every reader sees (every charset parameter counts, should one be given twice). */
export function utf8Charset(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  for (const m of contentType.matchAll(/;\s*charset\s*=\s*"?([^";,\s]*)"?/gi)) {
    const c = m[1]!.toLowerCase();
    if (c !== 'utf-8' && c !== 'utf8') return false;
  }
  return true;
}

export function responseFormat(contentType: string | undefined): ResponseFormat {
  if (!contentType) return 'other';
  const semi = contentType.indexOf(';');
  const t = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  switch (t) {
    case 'text/event-stream':
      return 'sse';
    case 'application/x-ndjson':
    case 'application/ndjson':
    case 'application/jsonl':
    case 'application/jsonlines':
    case 'application/x-jsonlines':
      return 'ndjson';
    case 'application/json':
      return 'json';
    default:
      return t.endsWith('+json') ? 'json' : 'other';
  }
}

const count = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;

/** OpenAI `usage` object → Usage; undefined unless it reports prompt tokens. Embeddings report no
 * completion_tokens: 0 output is then the truth, not a guess. */
export function openAiUsage(u: unknown): Usage | undefined {
  if (u === null || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const input = count(o.prompt_tokens);
  if (input === undefined) return undefined;
  const output = count(o.completion_tokens) ?? 0;
  const usage: Usage = {
    inputTokens: input,
    outputTokens: output,
    totalTokens: count(o.total_tokens) ?? input + output,
    source: 'upstream',
  };
  const details = o.prompt_tokens_details;
  if (details !== null && typeof details === 'object') {
    const cached = count((details as Record<string, unknown>).cached_tokens);
    if (cached !== undefined) usage.cachedInputTokens = Math.min(cached, input);
  }
  return usage;
}

/** Ollama's final object (done: true) → Usage; undefined when it carries neither count (a
 * generate call without a prompt only loads the model). One count alone is kept with the other
 * as 0: Ollama omits prompt_eval_count when the whole prompt came from its cache. */
export function ollamaUsage(o: Record<string, unknown>): Usage | undefined {
  const input = count(o.prompt_eval_count);
  const output = count(o.eval_count);
  if (input === undefined && output === undefined) return undefined;
  return {
    inputTokens: input ?? 0,
    outputTokens: output ?? 0,
    totalTokens: (input ?? 0) + (output ?? 0),
    source: 'upstream',
  };
}

/** TGI's details.generated_tokens alone, for when the prompt count is missing: the gate then
 * counts the prompt and keeps upstream's output count. */
export function tgiOutputTokens(details: unknown): number | undefined {
  if (details === null || typeof details !== 'object') return undefined;
  return count((details as Record<string, unknown>).generated_tokens);
}

/** TGI's `details` → Usage: output is generated_tokens; input is the stream's input_length
 * (TGI ≥ 2) or, in a whole response, the prefill tokens (one per prompt token, sent only when the
 * client asked for decoder_input_details). Undefined unless both are known: the gate then counts
 * with a tokenizer rather than record half of what upstream said. */
export function tgiUsage(details: unknown): Usage | undefined {
  if (details === null || typeof details !== 'object') return undefined;
  const d = details as Record<string, unknown>;
  const output = count(d.generated_tokens);
  const input =
    count(d.input_length) ?? (Array.isArray(d.prefill) && d.prefill.length > 0 ? d.prefill.length : undefined);
  if (output === undefined || input === undefined) return undefined;
  return { inputTokens: input, outputTokens: output, totalTokens: input + output, source: 'upstream' };
}

/** Usage and served model from a complete JSON response body: the streaming reader fed it at
 * once (one way to read JSON usage, whole or in chunks). */
export function usageFromJson(kind: ApiKind, body: Buffer): { usage: Usage | undefined; model: string | undefined } {
  const reader = createJsonUsageReader(kind);
  reader.push(body, true);
  return { usage: reader.usage, model: reader.model };
}
