// The completion text a stream delivered to the client, kept while upstream has reported no
// usage, so a stream that ends without usage (or is cancelled before it) is charged what the
// client received. Bounded: past MAX_CHARS only the number of further characters is kept.
import { extraTexts, type ResponseFamily } from '../llm/extra-texts.ts';
import type { ResponseEvent } from '../llm/response-stream.ts';
import { tgiOutputTokens } from '../llm/usage.ts';

/** Characters kept per request (UTF-16 units): ~2 MiB of memory at most. */
export const MAX_CHARS = 1024 * 1024;

export class TextCollector {
  /** Runs by key: content per choice ("c0"), a tool call's name and arguments ("t0.1"), the
   * other texts a client receives, reasoning first ("x0/reasoning_content", extra-texts.ts). */
  private readonly runs = new Map<string, string[]>();
  private chars = 0;
  droppedChars = 0;
  /** TGI's last event: upstream's output count (details.generated_tokens), though it gave no
   * prompt count; the delivered texts need no counting then. */
  upstreamOutput: number | undefined = undefined;
  private readonly family: ResponseFamily;

  constructor(family: ResponseFamily) {
    this.family = family;
  }

  add(event: ResponseEvent): void {
    const details = event.data.details;
    if (details !== undefined && details !== null) this.upstreamOutput = tgiOutputTokens(details);
    for (const t of event.texts) this.push(`c${t.choice}`, t.text);
    for (const a of event.toolArguments) this.push(`t${a.choice}.${a.call}`, a.text);
    // Reasoning is billed as output: a stream cancelled while the model still thinks is charged
    // what it delivered, not nothing.
    for (const x of extraTexts(event.data, this.family)) this.push(x.key, x.text);
    // A tool call's name comes once, in its first delta: counted like the JSON answer's.
    const choices = event.data.choices;
    if (!Array.isArray(choices)) return;
    for (const c of choices as unknown[]) {
      const calls = (c as { delta?: { tool_calls?: unknown } } | null)?.delta?.tool_calls;
      if (!Array.isArray(calls)) continue;
      for (const call of calls as unknown[]) {
        const name = (call as { function?: { name?: unknown } } | null)?.function?.name;
        if (typeof name === 'string')
          this.push(`n${(c as { index?: number }).index ?? 0}.${(call as { index?: number }).index ?? 0}`, name);
      }
    }
  }

  private push(key: string, text: string): void {
    if (text.length === 0) return;
    if (this.chars + text.length > MAX_CHARS) {
      this.droppedChars += text.length;
      return;
    }
    this.chars += text.length;
    let run = this.runs.get(key);
    if (run === undefined) {
      run = [];
      this.runs.set(key, run);
    }
    run.push(text);
  }

  /** Each run joined: a tokenizer counts a run as the whole text it forms, not piece by piece. */
  texts(): string[] {
    return [...this.runs.values()].map((r) => r.join(''));
  }
}
