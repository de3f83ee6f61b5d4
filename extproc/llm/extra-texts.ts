// The texts a streamed response event carries besides a choice's content and its tool calls'
// arguments (which the response reader hands out as `texts` and `toolArguments`): reasoning as
// vLLM streams it (`reasoning_content`, the newer `reasoning`), a refusal, a legacy function
// call's arguments, an audio answer's transcript, Ollama's `thinking`. The client receives them
// like content: dlp.response judges each as a channel of its own, and metering counts them as
// output when upstream reports no usage (servers bill reasoning as completion tokens).
/** The response shapes, by the request's API: OpenAI-compatible, Ollama, TGI's native one. */
export type ResponseFamily = 'openai' | 'ollama' | 'tgi';

export function responseFamily(api: string): ResponseFamily {
  return api.startsWith('tgi.') ? 'tgi' : api.startsWith('ollama.') ? 'ollama' : 'openai';
}

/** A streamed text besides content and tool-call arguments. */
export interface ExtraText {
  choice: number;
  /** The run's key (`x<choice>/<field>`): dlp.response's channel, metering's run. */
  key: string;
  /** Where it is in the event, for the audit. */
  path: string;
  text: string;
}

/** OpenAI-compatible delta members that stream text of their own. */
export const DELTA_TEXTS = ['reasoning_content', 'reasoning', 'refusal'] as const;
/** Delta members whose text is one level down: a legacy function call's arguments, an audio
 * answer's transcript. The channel's field is the member's name. */
export const NESTED_TEXTS = [
  ['function_call', 'arguments'],
  ['audio', 'transcript'],
] as const;
/** Ollama's thinking (message.thinking in chat, thinking in generate). */
export const THINKING = 'thinking';

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
/** The response reader's own test for a holder of texts (delta, message): any object, arrays
 * included, so a channel here is exactly a text it reads. */
export const isHolder = (v: unknown): v is Json => v !== null && typeof v === 'object';

/** The choice number of choices[i] (its `index`, else its position). */
function choiceOf(c: Json, i: number): number {
  return typeof c.index === 'number' ? c.index : i;
}

const NONE: ExtraText[] = [];

/** The event's extra texts; the same empty list when it has none (most events: nothing is
 * allocated for them, metering reads every event of a stream). */
export function extraTexts(data: Readonly<Json>, family: ResponseFamily): ExtraText[] {
  if (family === 'ollama') {
    const message = data.message;
    const text = isHolder(message) ? message.thinking : data.thinking;
    if (typeof text !== 'string' || text.length === 0) return NONE;
    return [{ choice: 0, key: `x0/${THINKING}`, path: isHolder(message) ? 'message.thinking' : 'thinking', text }];
  }
  if (family !== 'openai' || !Array.isArray(data.choices)) return NONE;
  let out = NONE;
  const choices = data.choices as unknown[];
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i];
    if (!isObject(c) || !isHolder(c.delta)) continue;
    const choice = choiceOf(c, i);
    const delta = c.delta;
    for (const field of DELTA_TEXTS) {
      const text = delta[field];
      if (typeof text !== 'string' || text.length === 0) continue;
      if (out === NONE) out = [];
      out.push({ choice, key: `x${choice}/${field}`, path: `choices[${choice}].delta.${field}`, text });
    }
    for (const [field, member] of NESTED_TEXTS) {
      const holder = delta[field];
      const text = isObject(holder) ? holder[member] : undefined;
      if (typeof text !== 'string' || text.length === 0) continue;
      if (out === NONE) out = [];
      out.push({ choice, key: `x${choice}/${field}`, path: `choices[${choice}].delta.${field}.${member}`, text });
    }
  }
  return out;
}
