// Counting off the event loop: a large text goes to a parse worker thread and comes back with
// the same count as inline; small texts are counted inline once the encoding is in this thread.
import { afterAll, describe, expect, it } from 'vitest';
import { ParsePool } from '../llm/parse-pool.ts';
import { type CountJob, countJob } from './count.ts';
import { countTokens, INLINE_COUNT_MAX_BYTES } from './counter.ts';
import { bpe } from './tokenizer.ts';

const pool = new ParsePool({ threads: 1 });
afterAll(() => pool.close());

const job = (content: string, reply: string): CountJob => ({
  kind: 'openai.chat',
  encoding: 'o200k_base',
  request: Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] })),
  responseJson: Buffer.from(JSON.stringify({ choices: [{ index: 0, message: { content: reply } }] })),
  responseTexts: undefined,
});

describe('countTokens', () => {
  it('counts a large request on the pool, as inline would', async () => {
    const big = job('Ein größerer Text über Zölle und Häfen. '.repeat(400), 'Kurz gesagt: ja.');
    const expected = countJob(big);
    const r = countTokens(pool, big);
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toEqual(expected);
    // The caller's buffers are its own still: copies were transferred.
    expect(big.request!.byteLength).toBeGreaterThan(INLINE_COUNT_MAX_BYTES);
  });

  it('counts a small request inline once the encoding is loaded in this thread', () => {
    bpe('o200k_base');
    const small = job('hello', 'hi');
    expect(countTokens(pool, small)).toEqual(countJob(small));
  });
});
