// verifyFiles edge cases the CLI tests do not reach: a set with nothing in it is not proven.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyFiles } from './verify.ts';

describe('verifyFiles', () => {
  it('fails an empty file, and one holding only a torn line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verify-'));
    const empty = join(dir, 'empty.log');
    await writeFile(empty, '');
    expect((await verifyFiles([empty])).problem).toMatchObject({
      file: empty,
      reason: 'no complete audit line in the set',
    });
    const torn = join(dir, 'torn.log');
    await writeFile(torn, '{"type":"request","seq":0');
    expect((await verifyFiles([torn])).problem?.reason).toBe('no complete audit line in the set');
  });
});
