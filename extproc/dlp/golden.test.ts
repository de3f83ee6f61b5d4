// What the engine finds must not move when its scan is made faster: the findings on the corpus
// (three seeds) and on dense and prose-mixed texts built from it, digested, against the digest
// main gave at 9b5b5c8, before the scan rewrites of the dlpscan round (first-character shapes,
// probe characters for leads, one object shape per compiled detector).
import { describe, expect, it } from 'vitest';
import { findingsDigest, goldenTexts } from '../../test/dlp/golden.ts';
import { compileDlp } from './compile.ts';

describe('DLP findings digest', () => {
  const texts = goldenTexts();

  it('the default policy finds exactly what it found before', () => {
    expect(findingsDigest(compileDlp({ name: 'default' }), texts)).toEqual({
      digest: '90bc0c43968cb0ad1fd81b692f5feecad6a56e1b331bf81494c667177d5c5b22',
      findings: 18740,
    });
  });

  it('a policy with its own context words, window and actions does too', () => {
    const scanner = compileDlp({
      name: 'ctx',
      minConfidence: 0.3,
      context: { window: 64, raise: ['confidential', 'customer'], lower: ['sample', 'test'] },
      detectors: { PHONE: 'mask', EMAIL: 'pseudonymise' },
    });
    expect(findingsDigest(scanner, texts)).toEqual({
      digest: '85d676d1288ed97563cbc9f6b427e943f69073243b6bab14ea3642da4e7d1fa3',
      findings: 19209,
    });
  });
});
