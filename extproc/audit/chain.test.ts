import { describe, expect, it } from 'vitest';
import { Chain, GENESIS, sha256Hex } from './chain.ts';

/** What the chain must produce for `jsons` (one JSON object each): every line spliced as a
 * string (Chain.link), newline-terminated, in order. */
function spliced(start: Chain, jsons: string[]): string {
  return jsons.map((j) => `${start.link('request', j)}\n`).join('');
}

const RECORDS = [
  JSON.stringify({ request_id: 'a', status: 200 }),
  // Multi-byte text (UTF-8 of 2, 3 and 4 bytes), escapes and a long value.
  JSON.stringify({ request_id: 'b', note: 'café 漢字 🙂 "quoted" \\ back', pad: 'x'.repeat(3000) }),
  '{}',
  JSON.stringify({ request_id: 'c', lone: '\ud800' }),
];

describe('Chain.encodeAll', () => {
  const cases: { name: string; entries: string[] }[] = [
    { name: 'one record per entry, without its newline (this thread)', entries: RECORDS },
    { name: "a gate worker's batch, newline-terminated lines", entries: [`${RECORDS.join('\n')}\n`] },
    {
      name: 'both kinds mixed, and a batch whose last line has no newline',
      entries: [RECORDS[0]!, `${RECORDS[1]}\n${RECORDS[2]}\n`, RECORDS[3]!],
    },
  ];
  for (const c of cases) {
    it(`encodes the same bytes and hashes as splicing strings: ${c.name}`, () => {
      const expected = spliced(new Chain({ seq: 41, prev: sha256Hex('before') }), RECORDS);
      const chain = new Chain({ seq: 41, prev: sha256Hex('before') });
      const buf = chain.encodeAll('request', c.entries);
      expect(buf.toString('utf8')).toBe(expected);
      expect(chain.seq).toBe(41 + RECORDS.length);
      // The head of the next line names the hash of the last line as written.
      const lines = expected.split('\n');
      expect(chain.prev).toBe(sha256Hex(lines[lines.length - 2]!));
    });
  }

  it('links nothing for no entries, and the chain stays where it was', () => {
    const chain = new Chain();
    expect(chain.encodeAll('request', []).length).toBe(0);
    expect(chain.seq).toBe(0);
    expect(chain.prev).toBe(GENESIS);
  });

  it('fits the longest seq a chain can reach', () => {
    const at = { seq: Number.MAX_SAFE_INTEGER - 1, prev: GENESIS };
    const buf = new Chain(at).encodeAll('request', [RECORDS[0]!]);
    expect(buf.toString('utf8')).toBe(spliced(new Chain(at), [RECORDS[0]!]));
  });
});
