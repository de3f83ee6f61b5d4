// The tokenizer fallback for TGI's native API: the prompt is `inputs`, the completion the
// generated_text of /generate, of the compat route's one-element array, or a stream's texts.
import { describe, expect, it } from 'vitest';
import { countJob } from './count.ts';
import { countText } from './tokenizer.ts';

const enc = 'o200k_base' as const;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const inputs = 'Summarise the quarterly report for the board, briefly.';
const reply = 'Revenue grew 12 % while costs stayed flat.';

describe('countJob for TGI', () => {
  const table: [string, 'tgi.generate' | 'tgi.generate_stream', Buffer | undefined, string[] | undefined][] = [
    ['/generate', 'tgi.generate', json({ generated_text: reply }), undefined],
    ['compat route array', 'tgi.generate', json([{ generated_text: reply }]), undefined],
    ['stream texts', 'tgi.generate_stream', undefined, ['Revenue grew', ' 12 % while costs', ' stayed flat.']],
  ];
  for (const [name, kind, responseJson, responseTexts] of table) {
    it(name, () => {
      const n = countJob({
        kind,
        encoding: enc,
        request: json({ inputs, parameters: { max_new_tokens: 9 } }),
        responseJson,
        responseTexts,
      });
      expect(n.input).toBe(countText(enc, inputs));
      expect(n.output).toBe(
        responseTexts === undefined ? countText(enc, reply) : responseTexts.reduce((a, t) => a + countText(enc, t), 0),
      );
      expect(n.input).toBeGreaterThan(5);
      expect(n.output).toBeGreaterThan(5);
    });
  }
});
