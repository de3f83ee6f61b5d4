// What one streamed response event carries besides a choice's content and its tool calls'
// arguments, for dlp.response: every other text the client receives must be judged too.
//
// - Streamed texts of their own (llm/extra-texts.ts): reasoning, a refusal, a legacy function
//   call's arguments, audio output's transcript, Ollama's thinking. Each comes in pieces like
//   content, so each is a channel with its own hold-back.
// - Per-token texts (tokenDetailsIn): logprobs and TGI's top_tokens repeat the answer one token at
//   a time, each released with its chunk before the hold-back has judged the text around it.
//   No one piece holds enough of a value to be found, so a stream carrying them is ended.
// - Every other string (otherStrings: a tool call's name, Ollama's tool-call arguments, which
//   come whole as an object, a field the gate does not know of) is judged whole, as a JSON
//   body's strings are: it is not a piece of a channel.
import {
  DELTA_TEXTS,
  isHolder,
  isObject,
  type Json,
  NESTED_TEXTS,
  type ResponseFamily,
  THINKING,
} from '../../llm/extra-texts.ts';

import { FREE_KEYS } from './json-strings.ts';

export { type ExtraText, extraTexts, type ResponseFamily, responseFamily } from '../../llm/extra-texts.ts';

/** Put a channel's released text (key from extraTexts) into the event's copy `next`, on the choice
 * object `c` (OpenAI-compatible) or the event itself (Ollama). */
export function setExtra(target: Json, family: ResponseFamily, key: string, text: string): void {
  const field = key.slice(key.indexOf('/') + 1);
  if (family === 'ollama') {
    if (isHolder(target.message)) target.message.thinking = text;
    else target.thinking = text;
    return;
  }
  const delta = objectAt(target, 'delta');
  const nested = NESTED_TEXTS.find(([f]) => f === field);
  if (nested !== undefined) objectAt(delta, field)[nested[1]] = text;
  else delta[field] = text;
}

/** Where the event carries per-token texts, if it does: OpenAI's and Ollama's logprobs, vLLM's
 * prompt_logprobs, TGI's top_tokens. A member that holds no string (null, an empty list, numbers
 * only) carries none; but vLLM's token_ids (return_token_ids) are a choice's text as token ids,
 * which a tokenizer reads back, so a non-empty list of them counts. */
export function tokenDetailsIn(data: Readonly<Json>, family: ResponseFamily): string | undefined {
  if (family === 'tgi') return holdsString(data.top_tokens) ? 'top_tokens' : undefined;
  if (holdsString(data.logprobs)) return 'logprobs';
  if (holdsString(data.prompt_logprobs)) return 'prompt_logprobs';
  if (Array.isArray(data.choices))
    for (const c of data.choices as unknown[]) {
      if (!isObject(c)) continue;
      if (holdsString(c.logprobs)) return 'logprobs';
      if (Array.isArray(c.token_ids) && c.token_ids.length > 0) return 'token_ids';
    }
  return undefined;
}

/** Members of a whole JSON answer that hold per-token texts, by family: OpenAI-compatible and
 * Ollama logprobs, vLLM's prompt_logprobs and token_ids (`"prompt_token_ids"`, the prompt as
 * forwarded, does not match); TGI's details. */
const ANSWER_TOKEN_KEYS: Record<ResponseFamily, readonly Buffer[]> = {
  openai: ['logprobs', 'prompt_logprobs', 'token_ids'].map((k) => Buffer.from(`"${k}"`)),
  ollama: ['logprobs'].map((k) => Buffer.from(`"${k}"`)),
  tgi: ['tokens', 'prefill', 'top_tokens', 'best_of_sequences'].map((k) => Buffer.from(`"${k}"`)),
};

/** Where a whole JSON answer carries per-token texts, if it does: the first member of
 * ANSWER_TOKEN_KEYS whose value is not null, an empty list or an empty object. Read on bytes, not
 * parsed: this runs on the event loop for an answer DLP changed, up to
 * server.maxBufferedResponseBytes, and a native search is a fraction of a parse. A quoted name
 * followed by `:` is a member name: inside a string its quotes would be escaped. Conservative:
 * a non-empty value without a token text (`{"content":null}`) counts too, and the answer is then
 * refused, never released. */
export function tokenDetailsInAnswer(body: Buffer, family: ResponseFamily): string | undefined {
  for (const key of ANSWER_TOKEN_KEYS[family]) {
    for (let at = body.indexOf(key); at >= 0; at = body.indexOf(key, at + key.length)) {
      let i = skipSpace(body, at + key.length);
      if (body[i] !== 0x3a) continue;
      i = skipSpace(body, i + 1);
      const first = body[i];
      if (first === 0x6e) continue; // null
      if (first === 0x5b || first === 0x7b) {
        const next = body[skipSpace(body, i + 1)];
        if ((first === 0x5b && next === 0x5d) || (first === 0x7b && next === 0x7d)) continue;
      }
      const name = key.toString('latin1', 1, key.length - 1);
      return family === 'tgi' ? `details.${name}` : name;
    }
  }
  return undefined;
}

const CONTEXT = Buffer.from('"context"');

/** The value of an Ollama /api/generate answer's `context` (the token ids of the exchange), as
 * bytes [start, end), when it is a non-empty list. Read on bytes like tokenDetailsInAnswer; in a
 * generate answer only the server writes member names (the model writes `response` and
 * `thinking` strings, whose quotes would be escaped), so the name is the top-level member. */
export function ollamaContextSpan(body: Buffer): [number, number] | undefined {
  for (let at = body.indexOf(CONTEXT); at >= 0; at = body.indexOf(CONTEXT, at + CONTEXT.length)) {
    let i = skipSpace(body, at + CONTEXT.length);
    if (body[i] !== 0x3a) continue;
    i = skipSpace(body, i + 1);
    if (body[i] !== 0x5b) return undefined;
    const end = body.indexOf(0x5d, i);
    if (end < 0 || skipSpace(body, i + 1) === end) return undefined;
    return [i, end + 1];
  }
  return undefined;
}

function skipSpace(b: Buffer, i: number): number {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  return i;
}

function holdsString(v: unknown): boolean {
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') return true;
    if (Array.isArray(x)) for (const y of x) stack.push(y);
    else if (isObject(x)) for (const k in x) stack.push(x[k]);
  }
  return false;
}

/** Members that hold no one's text (as in a JSON body's scan) or that other stages read. */
const SKIP_KEYS = new Set([
  'role',
  'type',
  'id',
  'tool_call_id',
  'object',
  'finish_reason',
  'done_reason',
  'system_fingerprint',
  'created_at',
]);

/** One string of the event outside every channel. */
export interface OtherString {
  text: string;
  /** Where it is, as property names and array positions from the event's top (for a name: the
   * name itself last). */
  at: readonly (string | number)[];
  /** A member name the model wrote (inside a FREE_KEYS value): it cannot be rewritten. */
  name?: true;
}

/** Every non-empty string of the event that no channel carries (the texts the guards judge). The
 * walk is iterative: an event's depth is upstream's choice. */
export function otherStrings(data: Readonly<Json>, family: ResponseFamily): OtherString[] {
  const out: OtherString[] = [];
  const slots = channelSlots(data, family);
  // Each node keeps its parent and its name there; a path is built only for a string found.
  interface Node {
    v: unknown;
    up: Node | undefined;
    name: string | number;
    /** Inside a value the model wrote (FREE_KEYS): protocol names mean nothing there. */
    free: boolean;
  }
  const pathOf = (n: Node | undefined, last: string | number): (string | number)[] => {
    const at = [last];
    for (let x = n; x?.up !== undefined; x = x.up) at.push(x.name);
    return at.reverse();
  };
  const stack: Node[] = [{ v: data, up: undefined, name: '', free: false }];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const v = n.v;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        const x = v[i];
        if (typeof x === 'string') {
          if (x.length > 0 && !isMedia(x)) out.push({ text: x, at: pathOf(n, i) });
        } else if (typeof x === 'number') {
          if (n.free) out.push({ text: String(x), at: pathOf(n, i) });
        } else if (x !== null && typeof x === 'object') stack.push({ v: x, up: n, name: i, free: n.free });
      }
      continue;
    }
    if (!isObject(v)) continue;
    const free = n.free;
    for (const key in v) {
      if (free) {
        if (key.length > 0) out.push({ text: key, at: pathOf(n, key), name: true });
      } else if (SKIP_KEYS.has(key) || (n.up === undefined && key === 'model') || isSlot(slots, v, key)) continue;
      const x = v[key];
      if (typeof x === 'string') {
        if (x.length > 0 && !isMedia(x)) out.push({ text: x, at: pathOf(n, key) });
      } else if (typeof x === 'number') {
        // A number the model wrote (a card number given as one); rewritten, it becomes a string.
        if (free) out.push({ text: String(x), at: pathOf(n, key) });
      } else if (x !== null && typeof x === 'object')
        stack.push({ v: x, up: n, name: key, free: free || FREE_KEYS.has(key) });
    }
  }
  return out;
}

/** A whole base64 data URL (inline media, not text), as a JSON body's scan skips it. */
function isMedia(s: string): boolean {
  return s.startsWith('data:') && /^data:[^\s,"\\]*;base64,[A-Za-z0-9+/]*={0,2}$/.test(s);
}

/** The channels of one event: pairs of an object and the member of it that is one (a few per
 * event, so a list: a Map of Sets per event was garbage on every chunk). */
type Slots = (Json | string)[];

function isSlot(slots: Slots, o: Json, key: string): boolean {
  for (let i = 0; i < slots.length; i += 2) if (slots[i] === o && slots[i + 1] === key) return true;
  return false;
}

/** The members that are channels, per object of the event: the same strings the response reader
 * (content, tool-call arguments), extraTexts and TGI's token and generated_text read. */
function channelSlots(data: Readonly<Json>, family: ResponseFamily): Slots {
  const slots: Slots = [];
  const mark = (o: Json, key: string) => {
    if (typeof o[key] === 'string') slots.push(o, key);
  };
  if (family === 'tgi') {
    if (isObject(data.token) && data.token.special !== true) mark(data.token, 'text');
    mark(data as Json, 'generated_text');
    return slots;
  }
  if (family === 'ollama') {
    if (isHolder(data.message)) {
      mark(data.message, 'content');
      mark(data.message, THINKING);
    } else {
      mark(data as Json, 'response');
      mark(data as Json, THINKING);
    }
    return slots;
  }
  if (!Array.isArray(data.choices)) return slots;
  for (const c of data.choices as unknown[]) {
    if (!isObject(c)) continue;
    if (!isHolder(c.delta)) {
      mark(c, 'text');
      continue;
    }
    const delta = c.delta;
    mark(delta, 'content');
    for (const field of DELTA_TEXTS) mark(delta, field);
    for (const [field, member] of NESTED_TEXTS) {
      const holder = delta[field];
      if (isObject(holder)) mark(holder, member);
    }
    if (Array.isArray(delta.tool_calls))
      for (const call of delta.tool_calls as unknown[])
        if (isObject(call) && isObject(call.function)) mark(call.function, 'arguments');
  }
  return slots;
}

/** A path as the audit writes it: `message.tool_calls[0].function.arguments.to`. */
export function pathText(at: readonly (string | number)[]): string {
  let out = '';
  for (const p of at) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

/** Set the string at `at` in `target` (a copy of the event the path was read from). */
export function setAt(target: Json, at: readonly (string | number)[], text: string): void {
  let o: unknown = target;
  for (let i = 0; i < at.length - 1; i++) o = (o as Record<string | number, unknown>)[at[i]!];
  (o as Record<string | number, unknown>)[at[at.length - 1]!] = text;
}

/** o[key] as an object, made one when it is not. */
export function objectAt(o: Json, key: string): Json {
  const v = o[key];
  if (isObject(v)) return v;
  const made: Json = {};
  o[key] = made;
  return made;
}

/** Nesting past which copyEvent hands over to structuredClone (no recursion limit to meet). */
const COPY_DEPTH = 64;

/** A deep copy of an event's JSON (plain data from JSON.parse) for a rewrite. structuredClone
 * did the same at ~2.8 µs for a one-choice chunk, 15-18% of the gate's busy time in the DLP
 * streaming profile (bench:alloc --cpu); this is ~0.25 µs. A `__proto__` member stays a member. */
export function copyEvent<T>(v: T, depth = 0): T {
  if (v === null || typeof v !== 'object') return v;
  if (depth > COPY_DEPTH) return structuredClone(v);
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = copyEvent(v[i], depth + 1);
    return out as T;
  }
  const out: Json = {};
  for (const k in v as Json) {
    const x = copyEvent((v as Json)[k], depth + 1);
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    else out[k] = x;
  }
  return out as T;
}
