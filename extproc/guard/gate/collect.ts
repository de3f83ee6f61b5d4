// The texts of a request body the injection heuristics judge, scored: pure and plain data in and
// out, so the same function runs inline for small bodies and on a parse-pool worker for large
// ones. One linear walk over the body's strings (extproc/dlp/gate/json-strings.ts), no tree.
//
// Which texts: what a model reads that the operator did not write. In chat bodies, every string
// of a message whose role is not system or developer (user and tool messages, content parts,
// an assistant turn the client supplies, tool-call arguments), and of vLLM's `documents` (what
// RAG templates print into the prompt: the classic carrier of an indirect injection); in
// completions and generate bodies, the prompt and the fill-in-the-middle `suffix`; in TGI's
// native bodies, `inputs`. Not tool definitions, the Ollama `system` field, ids, roles, types,
// URLs or inline media. A message's role may come after its content in the JSON, so spans are noted
// during the walk and decided once every role is known.
import { decodeJsonString, forEachJsonString, isInlineMedia } from '../../dlp/gate/json-strings.ts';
import { scoreInjection } from '../injection.ts';

/** messages (chat), or the one top-level member holding the prompt: `prompt` (completions,
 * Ollama generate) or `inputs` (TGI's native API). */
export type InjectionTexts = 'messages' | 'prompt' | 'inputs';

export interface InjectionJob {
  from: number;
  texts: InjectionTexts;
  /** Characters of the scored texts to hand back for the classifier (0: none wanted). */
  classifierChars: number;
}

export interface InjectionScan {
  /** The highest score of any one text, 0..1. */
  score: number;
  /** The strongest rule of that text (the refusal's rule id); undefined when nothing fired. */
  top: string | undefined;
  /** JSON path of that text. */
  path: string | undefined;
  /** Every rule id that fired in any text, sorted, at most MAX_RULES. */
  rules: string[];
  /** How many texts were scored. */
  texts: number;
  /** The scored texts joined, cut to classifierChars (its first and last halves). */
  classifierInput: string | undefined;
  truncated: boolean;
}

const MAX_RULES = 32;
const OPERATOR_ROLES = new Set(['system', 'developer']);
const SKIP_KEYS = new Set(['role', 'type', 'id', 'tool_call_id', 'name', 'url', 'images', 'detail', 'format']);
const SEPARATOR = '\n\n';

/** `messages[12].content[0].text` → 12; -1 when the path is not under messages. */
function messageIndex(path: string): number {
  if (!path.startsWith('messages[')) return -1;
  const close = path.indexOf(']', 9);
  return close < 0 ? -1 : Number(path.slice(9, close));
}

export function collectInjection(body: Buffer, job: InjectionJob): InjectionScan {
  const spans: { start: number; end: number; path: string; message: number }[] = [];
  const roles = new Map<number, string>();
  forEachJsonString(body, job.from, (start, end, key, depth, path) => {
    if (end - start <= 2) return;
    if (job.texts !== 'messages') {
      // `prompt` as a string (depth 1) or an array of strings (depth 2); TGI's `inputs` a string;
      // beside a prompt, its `suffix` (a string).
      if ((key === job.texts && depth <= 2) || (job.texts === 'prompt' && key === 'suffix' && depth === 1))
        spans.push({ start, end, path: path(), message: -1 });
      return;
    }
    if (depth < 2) return;
    const p = path();
    const message = messageIndex(p);
    if (message < 0) {
      // A document's every string (its title and text, as the template prints them).
      if (p.startsWith('documents[') && !isInlineMedia(body, start, end)) spans.push({ start, end, path: p, message });
      return;
    }
    if (key === 'role' && depth === 3) {
      roles.set(message, decodeJsonString(body, start, end).text);
      return;
    }
    if (key !== undefined && SKIP_KEYS.has(key)) return;
    // Inline media only: a text that merely begins with `data:` is read like any other.
    if (isInlineMedia(body, start, end)) return;
    spans.push({ start, end, path: p, message });
  });

  const out: InjectionScan = {
    score: 0,
    top: undefined,
    path: undefined,
    rules: [],
    texts: 0,
    classifierInput: undefined,
    truncated: false,
  };
  const fired = new Set<string>();
  const texts: string[] = [];
  for (const s of spans) {
    const role = roles.get(s.message);
    if (role !== undefined && OPERATOR_ROLES.has(role)) continue;
    const text = decodeJsonString(body, s.start, s.end).text;
    out.texts++;
    const r = scoreInjection(text);
    for (const h of r.hits) if (fired.size < MAX_RULES) fired.add(h.rule);
    if (r.score > out.score) {
      out.score = r.score;
      out.path = s.path;
      let strongest = r.hits[0]!;
      for (const h of r.hits) if (h.weight > strongest.weight) strongest = h;
      out.top = strongest.rule;
    }
    if (job.classifierChars > 0) texts.push(text);
  }
  out.rules = [...fired].sort();
  if (job.classifierChars > 0 && texts.length > 0) {
    const joined = texts.join(SEPARATOR);
    if (joined.length <= job.classifierChars) out.classifierInput = joined;
    else {
      // Instructions hide at either end of a long prompt: keep both.
      const half = Math.floor(job.classifierChars / 2);
      out.classifierInput = `${joined.slice(0, half)}\n…\n${joined.slice(joined.length - (job.classifierChars - half))}`;
      out.truncated = true;
    }
  }
  return out;
}
