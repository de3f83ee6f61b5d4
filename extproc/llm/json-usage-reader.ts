// Usage and served model from a JSON response body read chunk by chunk (STREAMED), so that a
// response of any size is metered without Envoy buffering it. One JsonScanner pass: only the
// top-level `model` string and the usage value (OpenAI: the `usage` object; Ollama:
// `prompt_eval_count` and `eval_count`; TGI: the `details` object) are kept, each at most MAX_VALUE_BYTES, then decoded by
// JSON.parse of just those bytes. Memory stays bounded whatever the body size: a 20 MiB
// embeddings response is scanned and forgotten.
//
// Lenient where metering must not be lost and strictness buys nothing: invalid UTF-8 (inside a
// generated text) and repeated keys (the last wins, as with JSON.parse). Malformed JSON never
// throws: usage and model are then undefined.

import { type ApiKind, apiSpec } from './apis.ts';
import { JsonScanner, type JsonType } from './json-scan.ts';
import { ollamaUsage, openAiUsage, tgiUsage, type Usage } from './usage.ts';

export interface JsonUsageReader {
  /** The next chunk of the body; endOfStream on the last one (which may be empty). */
  push(chunk: Buffer, endOfStream: boolean): void;
  /** Usage as reported so far (final once complete); undefined when absent or malformed. */
  readonly usage: Usage | undefined;
  /** The top-level `model` string, when present; undefined when malformed. */
  readonly model: string | undefined;
  /** The body ended and was one valid JSON text. */
  readonly complete: boolean;
}

/** The largest value kept for decoding: a usage object is well under 1 KiB. TGI's `details`
 * lists every prompt and generated token (~60 bytes each) when asked: past this size (about a
 * thousand tokens) it is not kept and the gate counts with a tokenizer instead. */
const MAX_VALUE_BYTES = 64 * 1024;
/** Responses nest a few levels (choices[].message.tool_calls[].function); generated text is in
 * strings. Deeper is treated as malformed. */
const MAX_DEPTH = 512;

type Field = 'model' | 'usage' | 'prompt_eval_count' | 'eval_count' | 'details';

/** A body that arrives whole (read BUFFERED: one message, end of stream) and is at most this
 * big is read with the native JSON.parse instead of the scanner: ~1 µs instead of ~3 for a chat
 * answer, and none of the scanner's per-reader state (bench:alloc --cpu had the reader at 7% of
 * the governed gate's busy time). Bounded so a parse on the event loop stays well under a
 * millisecond. Same answers as the scanner (the table test reads every body both ways), except
 * that nesting past MAX_DEPTH is not refused: that limit bounds the scanner's state across
 * chunks, which a whole parse does not have. */
const WHOLE_PARSE_MAX_BYTES = 64 * 1024;

export function createJsonUsageReader(kind: ApiKind): JsonUsageReader {
  return new UsageReader(kind);
}

/** A class rather than an object literal with getters: one shape, created cheaply per response. */
class UsageReader implements JsonUsageReader {
  private readonly kind: ApiKind;
  private incremental: JsonUsageReader | undefined;
  private whole: { values: Record<string, unknown> | undefined; complete: boolean } | undefined;

  constructor(kind: ApiKind) {
    this.kind = kind;
  }

  push(data: Buffer, endOfStream: boolean): void {
    if (this.whole !== undefined) return;
    if (this.incremental === undefined && endOfStream && data.length <= WHOLE_PARSE_MAX_BYTES) {
      this.whole = parseWhole(data);
      return;
    }
    this.incremental ??= createIncrementalReader(this.kind);
    this.incremental.push(data, endOfStream);
  }

  get usage(): Usage | undefined {
    if (this.incremental !== undefined) return this.incremental.usage;
    const v = this.whole?.values;
    if (v === undefined) return undefined;
    const source = apiSpec(this.kind)?.usage;
    if (source === 'tgi') return tgiUsage(v.details);
    if (source !== 'ollama') return openAiUsage(v.usage);
    return ollamaUsage({
      prompt_eval_count: numberOrUndefined(v.prompt_eval_count),
      eval_count: numberOrUndefined(v.eval_count),
    });
  }

  get model(): string | undefined {
    if (this.incremental !== undefined) return this.incremental.model;
    const m = this.whole?.values?.model;
    return typeof m === 'string' ? m : undefined;
  }

  get complete(): boolean {
    return this.incremental !== undefined ? this.incremental.complete : this.whole?.complete === true;
  }
}

/** The scanner's view of a whole body: the top-level members of an object (none of another
 * root), complete when the body is one JSON text; a leading UTF-8 BOM skipped as it does. */
function parseWhole(data: Buffer): { values: Record<string, unknown> | undefined; complete: boolean } {
  const bom = data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
  let root: unknown;
  try {
    root = JSON.parse(data.toString('utf8', bom));
  } catch {
    return { values: undefined, complete: false };
  }
  const values =
    root !== null && typeof root === 'object' && !Array.isArray(root) ? (root as Record<string, unknown>) : undefined;
  return { values, complete: true };
}

/** Ollama's counts are read only when they are numbers (the scanner keeps no other type). */
function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/** The scanner-based reader: any size, in chunks, memory bounded. */
function createIncrementalReader(kind: ApiKind): JsonUsageReader {
  const source = apiSpec(kind)?.usage;
  const ollama = source === 'ollama';
  const tgi = source === 'tgi';
  const values: Partial<Record<Field, unknown>> = {};
  // The value being captured: its field, absolute start, bytes from earlier chunks.
  let field: Field | undefined;
  let start = 0;
  let parts: Buffer[] = [];
  let kept = 0;
  let tooBig = false;
  // The chunk being scanned and the absolute offset of its first byte.
  let chunk: Buffer | undefined;
  let base = 0;
  let failed = false;
  let ended = false;

  const fieldOf = (key: string | undefined): Field | undefined => {
    if (key === 'model') return 'model';
    if (ollama) return key === 'prompt_eval_count' || key === 'eval_count' ? key : undefined;
    if (tgi) return key === 'details' ? 'details' : undefined;
    return key === 'usage' ? 'usage' : undefined;
  };
  const wanted = (f: Field, type: JsonType): boolean =>
    f === 'model' ? type === 'string' : f === 'usage' || f === 'details' ? type === 'object' : type === 'number';

  const scanner = new JsonScanner({
    maxDepth: MAX_DEPTH,
    allowBom: true,
    checkKeys: false,
    validateUtf8: false,
    onMemberStart: (key, type, at) => {
      const f = fieldOf(key);
      if (f === undefined) return;
      // A repeated key replaces the earlier value, as with JSON.parse; a value of the wrong type
      // leaves none.
      delete values[f];
      if (!wanted(f, type)) return;
      field = f;
      start = at;
      parts = [];
      kept = 0;
      tooBig = false;
    },
    onMember: (_key, _type, at, end) => {
      if (field === undefined || at !== start || chunk === undefined) return;
      const f = field;
      field = undefined;
      const from = Math.max(0, start - base);
      const last = chunk.subarray(from, end - base);
      if (tooBig || kept + last.length > MAX_VALUE_BYTES) return;
      const bytes = parts.length === 0 ? last : Buffer.concat([...parts, last]);
      parts = [];
      try {
        values[f] = JSON.parse(bytes.toString('utf8'));
      } catch {
        // Cannot happen for a value the scanner accepted; keep nothing if it does.
      }
    },
  });

  return {
    push(data: Buffer, endOfStream: boolean): void {
      if (failed || ended) return;
      chunk = data;
      base = scanner.offset;
      let error = data.length > 0 ? scanner.push(data) : undefined;
      // A value continuing past this chunk: keep its bytes (a copy: the chunk may share a larger
      // buffer), unless too big to be what we look for.
      if (error === undefined && field !== undefined && !tooBig) {
        const from = Math.max(0, start - base);
        kept += data.length - from;
        if (kept > MAX_VALUE_BYTES) {
          tooBig = true;
          parts = [];
        } else if (from < data.length) parts.push(Buffer.from(data.subarray(from)));
      }
      chunk = undefined;
      if (endOfStream) {
        ended = true;
        error ??= scanner.end();
      }
      if (error !== undefined) {
        failed = true;
        field = undefined;
        parts = [];
      }
    },
    get usage(): Usage | undefined {
      if (failed) return undefined;
      if (tgi) return tgiUsage(values.details);
      if (!ollama) return openAiUsage(values.usage);
      return ollamaUsage({ prompt_eval_count: values.prompt_eval_count, eval_count: values.eval_count });
    },
    get model(): string | undefined {
      return failed || typeof values.model !== 'string' ? undefined : values.model;
    },
    get complete(): boolean {
      return scanner.complete;
    },
  };
}
