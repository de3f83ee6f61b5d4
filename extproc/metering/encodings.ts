// Which tokenizer counts a model's tokens when upstream reports no usage. OpenAI's models have
// published encodings (o200k_base for the GPT-4o family and later, cl100k_base for GPT-4 and
// 3.5 and the embeddings of that generation); a count with the model's own encoding is exact.
// Any other model is counted with metering.tokenizers.default and marked estimated: an open
// model's tokenizer (Llama, Mistral, Qwen) differs, typically by 5-20 % on English text.
import type { Config } from '../config/schema.ts';
import { compileModelPatterns } from '../policy/model-names.ts';
import type { Matcher } from '../policy/patterns.ts';

export const ENCODINGS = ['o200k_base', 'cl100k_base', 'p50k_base', 'r50k_base'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** OpenAI model names and their encodings (as tiktoken maps them); checked after the config's
 * own map, in this order. */
export const DEFAULT_MODEL_ENCODINGS: Readonly<Record<string, Encoding>> = {
  'gpt-4o*': 'o200k_base',
  'gpt-4.1*': 'o200k_base',
  'gpt-4.5*': 'o200k_base',
  'gpt-5*': 'o200k_base',
  'o1*': 'o200k_base',
  'o3*': 'o200k_base',
  'o4*': 'o200k_base',
  'chatgpt-4o*': 'o200k_base',
  'gpt-4*': 'cl100k_base',
  'gpt-3.5*': 'cl100k_base',
  'gpt-35*': 'cl100k_base',
  'text-embedding-3-*': 'cl100k_base',
  'text-embedding-ada-002': 'cl100k_base',
  'davinci-002': 'cl100k_base',
  'babbage-002': 'cl100k_base',
};

export interface ModelEncoding {
  encoding: Encoding;
  /** The model's own tokenizer: counts are exact ('tokenizer'), else 'estimated'. */
  exact: boolean;
}

export interface EncodingMap {
  forModel(model: string): ModelEncoding;
}

class Map_ implements EncodingMap {
  private readonly entries: (readonly [Matcher, Encoding])[];
  private readonly fallback: ModelEncoding;
  private readonly memo = new Map<string, ModelEncoding>();
  constructor(config: Config) {
    const t = config.metering.tokenizers;
    this.entries = [...Object.entries(t.models), ...Object.entries(DEFAULT_MODEL_ENCODINGS)].map(
      ([pattern, enc]) => [compileModelPatterns([pattern]), enc] as const,
    );
    this.fallback = { encoding: t.default, exact: false };
  }
  forModel(model: string): ModelEncoding {
    const hit = this.memo.get(model);
    if (hit !== undefined) return hit;
    let found = this.fallback;
    for (const [matches, encoding] of this.entries)
      if (matches(model)) {
        found = { encoding, exact: true };
        break;
      }
    // Bounded: model names come from clients; past the bound the lookup is simply not kept.
    if (this.memo.size < 1024) this.memo.set(model, found);
    return found;
  }
}

const maps = new WeakMap<Config, EncodingMap>();

/** The encoding map of a config snapshot, compiled on first use. */
export function encodingMapFor(config: Config): EncodingMap {
  let m = maps.get(config);
  if (m === undefined) {
    m = new Map_(config);
    maps.set(config, m);
  }
  return m;
}
