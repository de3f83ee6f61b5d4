// Token counts of one request when upstream reported none: the prompt from the request body,
// the completion from the JSON response body or the texts a stream delivered. Plain data in and
// out, so the same function runs inline or on a parse worker thread (counter.ts decides).
//
// Chat prompts are counted as OpenAI documents for its chat models (the cookbook's
// num_tokens_from_messages): 3 tokens per message, the tokens of each of its string fields, 1
// more for a name, and 3 priming the reply. The mock model server reports the same, so a test's
// ground truth is this formula on the real encoding.
import type { ApiKind } from '../llm/apis.ts';
import { DELTA_TEXTS, THINKING } from '../llm/extra-texts.ts';
import { tgiOutputTokens } from '../llm/usage.ts';
import type { Encoding } from './encodings.ts';
import { countText } from './tokenizer.ts';

export interface CountJob {
  kind: ApiKind;
  encoding: Encoding;
  /** The request body as it went upstream. */
  request: Uint8Array | undefined;
  /** A JSON response body, whole. */
  responseJson: Uint8Array | undefined;
  /** A stream's delivered texts (content, tool calls, reasoning...), one string per run. */
  responseTexts: string[] | undefined;
}

export interface TokenCount {
  input: number;
  output: number;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function parse(bytes: Uint8Array | undefined): unknown {
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
}

export function countJob(job: CountJob): TokenCount {
  const request = parse(job.request);
  const input = isObject(request) ? promptTokens(job.kind, request, job.encoding) : 0;
  let output = 0;
  if (job.responseTexts !== undefined) for (const t of job.responseTexts) output += countText(job.encoding, t);
  else {
    let response = parse(job.responseJson);
    // TGI's compat route (/) answers a one-element array of what /generate answers.
    if (Array.isArray(response) && response.length === 1 && job.kind === 'tgi.generate') response = response[0];
    if (isObject(response)) output = completionTokens(job.kind, response, job.encoding);
  }
  return { input, output };
}

/** Text of a message's content: a string, or the text parts of an array of parts. */
function contentTokens(content: unknown, enc: Encoding): number {
  if (typeof content === 'string') return countText(enc, content);
  let n = 0;
  if (Array.isArray(content))
    for (const part of content) if (isObject(part) && typeof part.text === 'string') n += countText(enc, part.text);
  return n;
}

function toolCallTokens(calls: unknown, enc: Encoding): number {
  let n = 0;
  if (!Array.isArray(calls)) return 0;
  for (const c of calls) {
    const f = isObject(c) ? c.function : undefined;
    if (!isObject(f)) continue;
    if (typeof f.name === 'string') n += countText(enc, f.name);
    if (typeof f.arguments === 'string') n += countText(enc, f.arguments);
    // Ollama sends arguments as an object.
    else if (isObject(f.arguments)) n += countText(enc, JSON.stringify(f.arguments));
  }
  return n;
}

/** What an answer's message carries besides content and tool calls, billed as output too:
 * reasoning (vLLM's reasoning_content or reasoning), a refusal, a legacy function call, an audio
 * answer's transcript (OpenAI-compatible); thinking (Ollama). */
function messageExtraTokens(m: Json, enc: Encoding): number {
  let n = 0;
  for (const field of DELTA_TEXTS) {
    const v = m[field];
    if (typeof v === 'string') n += countText(enc, v);
  }
  if (typeof m[THINKING] === 'string') n += countText(enc, m[THINKING] as string);
  // The legacy function call's name counts too, as a tool call's does.
  if (isObject(m.function_call)) n += toolCallTokens([{ function: m.function_call }], enc);
  if (isObject(m.audio) && typeof m.audio.transcript === 'string') n += countText(enc, m.audio.transcript);
  return n;
}

/** A string, or an array of strings or token arrays (completions' prompt, embeddings' input). */
function inputTokens(v: unknown, enc: Encoding): number {
  if (typeof v === 'string') return countText(enc, v);
  if (!Array.isArray(v)) return 0;
  if (v.every((x) => typeof x === 'number')) return v.length;
  let n = 0;
  for (const x of v) n += inputTokens(x, enc);
  return n;
}

export function promptTokens(kind: ApiKind, body: Json, enc: Encoding): number {
  switch (kind) {
    case 'openai.chat':
    case 'ollama.chat': {
      if (!Array.isArray(body.messages)) return 0;
      let n = 3;
      for (const m of body.messages) {
        if (!isObject(m)) continue;
        n += 3;
        if (typeof m.role === 'string') n += countText(enc, m.role);
        n += contentTokens(m.content, enc);
        if (typeof m.name === 'string') n += 1 + countText(enc, m.name);
        n += toolCallTokens(m.tool_calls, enc);
      }
      return n;
    }
    case 'openai.completions':
      return inputTokens(body.prompt, enc);
    case 'ollama.generate':
      return inputTokens(body.prompt, enc) + inputTokens(body.system, enc);
    case 'openai.embeddings':
    case 'ollama.embed':
      return inputTokens(body.input ?? body.prompt, enc);
    case 'tgi.generate':
    case 'tgi.generate_stream':
      return inputTokens(body.inputs, enc);
    default:
      return 0;
  }
}

/** A completion's text, whole (the mock model server's ground truth uses it too). */
export function completionTokensOfText(enc: Encoding, text: string): number {
  return countText(enc, text);
}

export function completionTokens(kind: ApiKind, body: Json, enc: Encoding): number {
  switch (kind) {
    case 'openai.chat':
    case 'openai.completions': {
      if (!Array.isArray(body.choices)) return 0;
      let n = 0;
      for (const c of body.choices) {
        if (!isObject(c)) continue;
        if (typeof c.text === 'string') n += countText(enc, c.text);
        const m = c.message;
        if (isObject(m))
          n += contentTokens(m.content, enc) + toolCallTokens(m.tool_calls, enc) + messageExtraTokens(m, enc);
      }
      return n;
    }
    case 'ollama.chat': {
      const m = body.message;
      return isObject(m)
        ? contentTokens(m.content, enc) + toolCallTokens(m.tool_calls, enc) + messageExtraTokens(m, enc)
        : 0;
    }
    case 'ollama.generate':
      return (
        (typeof body.response === 'string' ? countText(enc, body.response) : 0) +
        (typeof body.thinking === 'string' ? countText(enc, body.thinking) : 0)
      );
    case 'tgi.generate': {
      // Upstream's own count when the answer has details, though without the prompt's.
      const upstream = tgiOutputTokens(body.details);
      if (upstream !== undefined) return upstream;
      return typeof body.generated_text === 'string' ? countText(enc, body.generated_text) : 0;
    }
    default:
      return 0;
  }
}
