// `npm run bench:tokenizer -- --quick`: every part of the tokenizer bench runs (a fresh process
// per encoding load, counting per encoding and text kind, the parse pool) and writes a result of
// the committed shape with its report. Never a timing threshold: machines vary.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { INLINE_COUNT_MAX_BYTES } from '../extproc/metering/counter.ts';
import { ENCODINGS } from '../extproc/metering/encodings.ts';
import { tokenizerResult } from './lib/tokenizer-result.ts';
import { TEXT_KINDS } from './lib/tokenizer-texts.ts';

const run = promisify(execFile);

describe('bench:tokenizer', () => {
  it('measures every encoding and text kind in quick mode and writes a well-formed result', async () => {
    const out = await mkdtemp(join(tmpdir(), 'lm-gate-bench-tokenizer-'));
    await run(process.execPath, [join(import.meta.dirname, 'tokenizer.ts'), '--quick', '--out', out], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const result = tokenizerResult.parse(JSON.parse(await readFile(join(out, 'tokenizer-quick.json'), 'utf8')));
    expect(result.kind).toBe('quick');
    expect(result.load.map((l) => l.encoding)).toEqual([...ENCODINGS]);
    for (const l of result.load) expect(l.rssMiB).toBeGreaterThan(0);
    // One row per encoding and text kind (quick mode: 1 KiB only), each counting some tokens.
    expect(result.count.map((c) => `${c.encoding}/${c.text}`)).toEqual(
      ENCODINGS.flatMap((e) => TEXT_KINDS.map((k) => `${e}/${k}`)),
    );
    for (const c of result.count) {
      expect(c.bytes).toBeGreaterThan(1000);
      expect(c.bytes).toBeLessThanOrEqual(1024);
      expect(c.tokens).toBeGreaterThan(0);
    }
    expect(result.pool.inlineMaxBytes).toBe(INLINE_COUNT_MAX_BYTES);
    expect(result.pool.rows.map((r) => r.bytes)).toEqual([1024, 16 * 1024]);
    const md = await readFile(join(out, 'tokenizer-quick.md'), 'utf8');
    expect(md).toContain('## Loading an encoding');
    expect(md).toContain('| o200k_base | cjk | 1 KiB |');
    expect(md).toContain('## On the parse pool');
  });
});
