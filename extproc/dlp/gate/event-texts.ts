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
  AUDIO,
  DELTA_TEXTS,
  FUNCTION_CALL,
  isHolder,
  isObject,
  type Json,
  type ResponseFamily,
  THINKING,
} from '../../llm/extra-texts.ts';

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
  if (field === FUNCTION_CALL) objectAt(delta, 'function_call').arguments = text;
  else if (field === AUDIO) objectAt(delta, 'audio').transcript = text;
  else delta[field] = text;
}

/** Where the event carries per-token texts, if it does: OpenAI's and Ollama's logprobs, vLLM's
 * prompt_logprobs, TGI's top_tokens. A member that holds no string (null, an empty list, numbers
 * only) carries none. */
export function tokenDetailsIn(data: Readonly<Json>, family: ResponseFamily): string | undefined {
  if (family === 'tgi') return holdsString(data.top_tokens) ? 'top_tokens' : undefined;
  if (holdsString(data.logprobs)) return 'logprobs';
  if (holdsString(data.prompt_logprobs)) return 'prompt_logprobs';
  if (Array.isArray(data.choices))
    for (const c of data.choices as unknown[]) if (isObject(c) && holdsString(c.logprobs)) return 'logprobs';
  return undefined;
}

/** Members of a whole JSON answer that hold per-token texts (OpenAI's and Ollama's logprobs,
 * vLLM's prompt_logprobs, TGI's details), looked for before the answer is parsed to be sure. */
const TOKEN_KEYS = ['"logprobs"', '"prompt_logprobs"', '"tokens"', '"prefill"', '"top_tokens"'].map((k) =>
  Buffer.from(k),
);

/** Where a whole JSON answer carries per-token texts, if it does. Parsed only when one of their
 * members' names is in it: this runs for an answer DLP changed, before it is released. */
export function tokenDetailsInAnswer(body: Buffer, family: ResponseFamily): string | undefined {
  if (!TOKEN_KEYS.some((k) => body.includes(k))) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return 'unreadable';
  }
  // TGI's compat route answers a list of generations.
  for (const answer of Array.isArray(parsed) ? parsed : [parsed]) {
    if (!isObject(answer)) continue;
    if (family === 'tgi') {
      const d = answer.details;
      if (isObject(d))
        for (const k of ['tokens', 'prefill', 'top_tokens', 'best_of_sequences'])
          if (holdsString(d[k])) return `details.${k}`;
      continue;
    }
    const found = tokenDetailsIn(answer, family);
    if (found !== undefined) return found;
    if (Array.isArray(answer.choices))
      for (const c of answer.choices as unknown[])
        if (isObject(c) && holdsString(c.prompt_logprobs)) return 'prompt_logprobs';
  }
  return undefined;
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
  /** Where it is, as property names and array positions from the event's top. */
  at: readonly (string | number)[];
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
  }
  const pathOf = (n: Node | undefined, last: string | number): (string | number)[] => {
    const at = [last];
    for (let x = n; x?.up !== undefined; x = x.up) at.push(x.name);
    return at.reverse();
  };
  const stack: Node[] = [{ v: data, up: undefined, name: '' }];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const v = n.v;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        const x = v[i];
        if (typeof x === 'string') {
          if (x.length > 0 && !isMedia(x)) out.push({ text: x, at: pathOf(n, i) });
        } else if (x !== null && typeof x === 'object') stack.push({ v: x, up: n, name: i });
      }
      continue;
    }
    if (!isObject(v)) continue;
    for (const key in v) {
      if (SKIP_KEYS.has(key) || (n.up === undefined && key === 'model') || isSlot(slots, v, key)) continue;
      const x = v[key];
      if (typeof x === 'string') {
        if (x.length > 0 && !isMedia(x)) out.push({ text: x, at: pathOf(n, key) });
      } else if (x !== null && typeof x === 'object') stack.push({ v: x, up: n, name: key });
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
    if (isObject(delta.function_call)) mark(delta.function_call, 'arguments');
    if (isObject(delta.audio)) mark(delta.audio, 'transcript');
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
