// The BPE encodings (gpt-tokenizer, pure JS), loaded on first use in the thread that counts.
// Loading one costs ~0.1 s of CPU and ~60 MiB of RSS (o200k_base; npm run bench:tokenizer,
// bench/results/tokenizer.md), so the gate's event-loop threads never load one while parse
// workers exist (see counter.ts): counting goes to those workers, and only they pay for it.
import { createRequire } from 'node:module';
import type { Encoding } from './encodings.ts';

interface Bpe {
  countTokens(text: string, opts: { disallowedSpecial: ReadonlySet<string> }): number;
}

/** Special-token text (<|endoftext|>) in client input is ordinary text, never a refusal: by
 * default the library throws on it, which a client could use to break counting. */
const ORDINARY = { disallowedSpecial: new Set<string>() };

const require = createRequire(import.meta.url);
const loaded = new Map<Encoding, Bpe>();

/** The encoding, loading it now (synchronously) when this thread has not yet. */
export function bpe(encoding: Encoding): Bpe {
  let e = loaded.get(encoding);
  if (e === undefined) {
    e = require(`gpt-tokenizer/cjs/encoding/${encoding}`) as Bpe;
    loaded.set(encoding, e);
  }
  return e;
}

/** Whether this thread has the encoding loaded already (counting then costs no load). */
export function isLoaded(encoding: Encoding): boolean {
  return loaded.has(encoding);
}

/** Tokens of `text` in `encoding`; special-token text counts as plain text, as it does in a
 * prompt the server tokenizes. */
export function countText(encoding: Encoding, text: string): number {
  return text.length === 0 ? 0 : bpe(encoding).countTokens(text, ORDINARY);
}
