// A digest of every finding the engine reports on the generated corpus and on texts built from
// it: the reference for rewrites that must not change what is found (faster shapes, leads,
// scan-loop changes). golden.test.ts holds the digest taken before such a rewrite; a change in
// detection changes the digest, and then the new value is recorded deliberately with the reason.
import { createHash } from 'node:crypto';
import type { Scanner } from '../../extproc/dlp/scanner.ts';
import { generateCorpus } from './corpus.ts';

/** Corpus samples (three seeds), the same run together as one dense text, and spliced into
 * prose one per ~1 KB, as the scan benchmark builds them. */
export function goldenTexts(): string[] {
  const samples = [13, 99, 7].flatMap((seed) => generateCorpus(seed, 3000).map((c) => c.text));
  const prose = 'The quarterly report shows steady growth across all regions, with costs under control. ';
  const dense: string[] = [];
  const mixed: string[] = [];
  for (let i = 0; i < samples.length; i += 150) {
    dense.push(samples.slice(i, i + 150).join('\n'));
    mixed.push(
      samples
        .slice(i, i + 16)
        .map((s) => `${prose.repeat(11)}${s}`)
        .join(' '),
    );
  }
  return [...samples, ...dense, ...mixed];
}

/** sha256 over each text's findings (type, offsets, confidence, action), in order. */
export function findingsDigest(scanner: Scanner, texts: readonly string[]): { digest: string; findings: number } {
  const hash = createHash('sha256');
  let findings = 0;
  for (const text of texts) {
    const found = scanner.scan(text);
    findings += found.length;
    hash.update(JSON.stringify(found.map((f) => [f.type, f.start, f.end, f.confidence, f.action, f.dataClass])));
    hash.update('\n');
  }
  return { digest: hash.digest('hex'), findings };
}
