// The texts a capture keeps, bounded: one budget of maxChars UTF-16 units per direction, spent in
// the order the texts come (messages in body order, stream deltas as they arrive). Past the
// budget only the number of characters is counted, so a long prompt or a long stream costs the
// gate at most maxChars of memory per direction. A cut never splits a surrogate pair (a lone
// half would make the capture line invalid UTF-8 for every reader).
//
// Texts are found on the bytes of the body as forwarded (forEachJsonString): the JSON strings at
// the paths that carry what the model reads or writes, decoded one by one; no tree is built.
import { decodeJsonString, forEachJsonString } from '../dlp/gate/json-strings.ts';

export class CaptureBudget {
  private readonly max: number;
  private kept = 0;
  /** Characters seen, kept or not. */
  total = 0;
  /** A cut was made: nothing after it is kept, so the captured text has no gap. */
  private closed = false;

  constructor(maxChars: number) {
    this.max = maxChars;
  }

  /** The part of `text` to keep: all of it, a prefix, or '' once the budget is spent. */
  take(text: string): string {
    this.total += text.length;
    if (this.closed) return '';
    const room = this.max - this.kept;
    if (text.length <= room) {
      this.kept += text.length;
      return text;
    }
    this.closed = true;
    let cut = room;
    const last = text.charCodeAt(cut - 1);
    if (cut > 0 && last >= 0xd800 && last <= 0xdbff) cut--;
    this.kept += cut;
    return text.slice(0, cut);
  }

  get truncated(): boolean {
    return this.total > this.kept;
  }
}

/** One prompt text: the message's role (system, user, assistant, tool), or for a top-level
 * field its name (prompt, input, system, suffix). */
export interface PromptPart {
  role: string;
  text: string;
}

export interface ResponsePart {
  choice: number;
  text: string;
}

const MESSAGE_TEXT = /^messages\[(\d+)\]\.content(?:\[\d+\]\.text)?$/;
const MESSAGE_ROLE = /^messages\[(\d+)\]\.role$/;
const FIELD_TEXT = /^(prompt|input|system|suffix)(?:\[\d+\])?$/;
/** Keys whose string values can be one of the paths above: the path is built only for these. */
const PROMPT_KEYS = new Set(['content', 'text', 'role', 'prompt', 'input', 'system', 'suffix']);

/** The prompt texts of a request body (OpenAI chat, completions, embeddings; Ollama chat,
 * generate, embed), in body order, within `budget`. Parts past the budget are counted only. */
export function promptParts(body: Buffer, budget: CaptureBudget): PromptPart[] {
  const found: { message: number; field: string; text: string }[] = [];
  const roles = new Map<number, string>();
  forEachJsonString(body, 0, (start, end, key, _depth, path) => {
    if (key === undefined || !PROMPT_KEYS.has(key)) return;
    const p = path();
    const role = MESSAGE_ROLE.exec(p);
    if (role !== null) {
      roles.set(Number(role[1]), decodeJsonString(body, start, end).text);
      return;
    }
    const message = MESSAGE_TEXT.exec(p);
    const field = message === null ? FIELD_TEXT.exec(p) : null;
    if (message === null && field === null) return;
    const text = budget.take(decodeJsonString(body, start, end).text);
    if (text === '') return;
    found.push(
      message !== null ? { message: Number(message[1]), field: '', text } : { message: -1, field: field![1]!, text },
    );
  });
  return found.map((f) => ({ role: f.message === -1 ? f.field : (roles.get(f.message) ?? 'unknown'), text: f.text }));
}

const CHOICE_TEXT = /^choices\[(\d+)\]\.(?:message\.content|text)$/;
const OLLAMA_TEXT = /^(?:message\.content|response)$/;
const RESPONSE_KEYS = new Set(['content', 'text', 'response']);

/** The answer texts of a JSON response (OpenAI choices[].message.content or .text; Ollama
 * message.content or response), within `budget`. */
export function jsonResponseParts(body: Buffer, budget: CaptureBudget): ResponsePart[] {
  const parts: ResponsePart[] = [];
  let first = 0;
  while (first < body.length && body[first] !== 0x7b) first++;
  forEachJsonString(body, first, (start, end, key, depth, path) => {
    if (key === undefined || !RESPONSE_KEYS.has(key) || depth > 4) return;
    const p = path();
    const choice = CHOICE_TEXT.exec(p);
    if (choice === null && !OLLAMA_TEXT.test(p)) return;
    const text = budget.take(decodeJsonString(body, start, end).text);
    if (text !== '') parts.push({ choice: choice === null ? 0 : Number(choice[1]), text });
  });
  return parts;
}

/** A stream's text deltas, joined per choice, within one budget. */
export class StreamTexts {
  private readonly budget: CaptureBudget;
  private readonly runs = new Map<number, string[]>();

  constructor(budget: CaptureBudget) {
    this.budget = budget;
  }

  add(choice: number, delta: string): void {
    const kept = this.budget.take(delta);
    if (kept === '') return;
    let run = this.runs.get(choice);
    if (run === undefined) {
      run = [];
      this.runs.set(choice, run);
    }
    run.push(kept);
  }

  parts(): ResponsePart[] {
    return [...this.runs].sort((a, b) => a[0] - b[0]).map(([choice, run]) => ({ choice, text: run.join('') }));
  }
}
