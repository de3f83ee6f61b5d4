// The acceptance bar of issue #13 on the generated corpus (test/dlp/corpus.ts): recall ≥ 0.99
// and precision ≥ 0.98 for every validator-backed type; the other types' figures are printed.
import { describe, expect, it } from 'vitest';
import { generateCorpus } from '../../test/dlp/corpus.ts';
import { evaluate, VALIDATED } from '../../test/dlp/evaluate.ts';
import { compileDlp } from './compile.ts';

describe('DLP corpus evaluation', () => {
  const corpus = generateCorpus(13, 3000);
  const { scores } = evaluate(compileDlp({ name: 'default' }), corpus);

  it('labels every type, validator-backed or not, many times over', () => {
    for (const s of scores) expect(s.tp + s.fn, s.type).toBeGreaterThanOrEqual(30);
    expect(scores.map((s) => s.type)).toEqual(expect.arrayContaining(VALIDATED));
  });

  it.each(VALIDATED.map((t) => [t]))('%s: recall ≥ 0.99, precision ≥ 0.98', (type) => {
    const s = scores.find((x) => x.type === type)!;
    expect({ type, recall: s.recall >= 0.99, precision: s.precision >= 0.98 }).toEqual({
      type,
      recall: true,
      precision: true,
    });
  });

  it('prints the other types', () => {
    const others = scores.filter((s) => !VALIDATED.includes(s.type));
    for (const s of others)
      console.log(`${s.type}: precision ${(s.precision * 100).toFixed(1)}%, recall ${(s.recall * 100).toFixed(1)}%`);
    expect(others.length).toBeGreaterThan(0);
  });

  it('another seed meets the bar too (the detectors were not tuned to one draw)', () => {
    const other = evaluate(compileDlp({ name: 'default' }), generateCorpus(99, 1500)).scores;
    const below = other.filter((s) => VALIDATED.includes(s.type) && (s.recall < 0.99 || s.precision < 0.98));
    expect(below).toEqual([]);
  });
});
