import { describe, expect, it } from 'vitest';
import { applyBodyEdits, type BodyEdit } from './body-edits.ts';

const e = (start: number, end: number, insert: string): BodyEdit => ({ start, end, insert: Buffer.from(insert) });
const body = Buffer.from('{"model":"gpt-4o","stream":true}');

describe('applyBodyEdits', () => {
  const rows: [string, BodyEdit[], string][] = [
    ['one replacement', [e(9, 17, '"llama"')], '{"model":"llama","stream":true}'],
    [
      'edits in any order, each against the original offsets',
      [e(1, 1, '"x":1,'), e(9, 17, '"a-much-longer-model-name"')],
      '{"x":1,"model":"a-much-longer-model-name","stream":true}',
    ],
    [
      'two insertions at one offset keep their order',
      [e(1, 1, 'A'), e(1, 1, 'B')],
      '{AB"model":"gpt-4o","stream":true}',
    ],
    ['an empty replacement deletes', [e(0, 1, '')], '"model":"gpt-4o","stream":true}'],
  ];
  for (const [name, edits, want] of rows) it(name, () => expect(applyBodyEdits(body, edits).toString()).toBe(want));

  it('refuses overlapping edits instead of picking one', () => {
    expect(() => applyBodyEdits(body, [e(9, 17, 'a'), e(12, 20, 'b')])).toThrow(/overlaps/);
  });
  it('refuses an edit outside the body', () => {
    expect(() => applyBodyEdits(body, [e(30, 40, 'a')])).toThrow(/outside/);
  });
});
