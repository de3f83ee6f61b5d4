// Candidates to findings: one finding per entity, offsets mapped back to the raw text.
import { type Normalised, rawSpan } from './normalize.ts';
import type { Action, DataClass, Finding } from './types.ts';

/** A validated, scored candidate in normalised offsets. */
export interface Candidate {
  type: string;
  start: number;
  end: number;
  confidence: number;
  priority: number;
  dataClass: DataClass;
  action: Action;
}

/** One finding per entity: candidates sorted by start; of two that overlap, the higher
 * priority wins, then the longer, then the earlier. */
export function resolveOverlaps(candidates: Candidate[]): Candidate[] {
  if (candidates.length < 2) return candidates;
  candidates.sort((a, b) => a.start - b.start || b.priority - a.priority || b.end - a.end);
  const out: Candidate[] = [];
  for (const c of candidates) {
    const last = out[out.length - 1];
    if (last === undefined || c.start >= last.end) out.push(c);
    else if (c.priority > last.priority || (c.priority === last.priority && c.end - c.start > last.end - last.start))
      out[out.length - 1] = c;
  }
  return out;
}

export function toFinding(n: Normalised, c: Candidate): Finding {
  const [start, end] = rawSpan(n, c.start, c.end);
  return { type: c.type, start, end, confidence: c.confidence, dataClass: c.dataClass, action: c.action };
}
