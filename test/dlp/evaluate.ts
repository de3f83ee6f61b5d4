// Precision and recall of a scanner per finding type over a labelled corpus. A finding counts
// only when a label has its type and exactly its span.
import type { Scanner } from '../../extproc/dlp/scanner.ts';
import type { Sample } from './corpus.ts';

export interface TypeScore {
  type: string;
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
}

export interface Miss {
  id: string;
  kind: 'fp' | 'fn';
  type: string;
  /** The text around the span, for reading, never printed in CI logs of real data. */
  excerpt: string;
}

/** Types with a validator beyond their shape (checksum, numbering plan, header decode):
 * the acceptance bar applies to these. */
export const VALIDATED = ['CREDIT_CARD', 'IBAN', 'US_SSN', 'UK_NHS', 'PHONE', 'IP_ADDRESS', 'GITHUB_TOKEN', 'JWT'];

export function evaluate(scanner: Scanner, corpus: readonly Sample[]): { scores: TypeScore[]; misses: Miss[] } {
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  const at = (type: string) => {
    let c = counts.get(type);
    if (!c) counts.set(type, (c = { tp: 0, fp: 0, fn: 0 }));
    return c;
  };
  const misses: Miss[] = [];
  const excerpt = (text: string, start: number, end: number) =>
    `${text.slice(Math.max(0, start - 30), start)}⟦${text.slice(start, end)}⟧${text.slice(end, end + 20)}`;
  for (const sample of corpus) {
    const findings = scanner.scan(sample.text);
    const key = (t: string, s: number, e: number) => `${t}:${s}:${e}`;
    const labelled = new Set(sample.labels.map((l) => key(l.type, l.start, l.end)));
    const found = new Set(findings.map((f) => key(f.type, f.start, f.end)));
    for (const f of findings) {
      if (labelled.has(key(f.type, f.start, f.end))) at(f.type).tp++;
      else {
        at(f.type).fp++;
        misses.push({ id: sample.id, kind: 'fp', type: f.type, excerpt: excerpt(sample.text, f.start, f.end) });
      }
    }
    for (const l of sample.labels)
      if (!found.has(key(l.type, l.start, l.end))) {
        at(l.type).fn++;
        misses.push({ id: sample.id, kind: 'fn', type: l.type, excerpt: excerpt(sample.text, l.start, l.end) });
      }
  }
  const scores = [...counts.entries()]
    .map(([type, c]) => ({
      type,
      ...c,
      precision: c.tp + c.fp === 0 ? 1 : c.tp / (c.tp + c.fp),
      recall: c.tp + c.fn === 0 ? 1 : c.tp / (c.tp + c.fn),
    }))
    .sort((a, b) => a.type.localeCompare(b.type));
  return { scores, misses };
}
