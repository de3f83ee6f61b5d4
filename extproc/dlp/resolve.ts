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
  sortCandidates(candidates);
  const out: Candidate[] = [];
  for (const c of candidates) {
    const last = out[out.length - 1];
    if (last === undefined || c.start >= last.end) out.push(c);
    else if (c.priority > last.priority || (c.priority === last.priority && c.end - c.start > last.end - last.start))
      out[out.length - 1] = c;
  }
  return out;
}

/** Start, then higher priority, then longer first. */
function before(a: Candidate, b: Candidate): number {
  return a.start - b.start || b.priority - a.priority || b.end - a.end;
}

/** Up to this many candidates are sorted in place by insertion (a prompt has a few dozen):
 * Array#sort copied them into a work array every scan. Beyond it, Array#sort (linear-log). */
const INSERTION_MAX = 32;

/** Sorts by `before`, stable, as Array#sort does. */
function sortCandidates(c: Candidate[]): void {
  if (c.length > INSERTION_MAX) {
    c.sort(before);
    return;
  }
  for (let i = 1; i < c.length; i++) {
    const x = c[i]!;
    let j = i - 1;
    while (j >= 0 && before(c[j]!, x) > 0) {
      c[j + 1] = c[j]!;
      j--;
    }
    c[j + 1] = x;
  }
}

export function toFinding(n: Normalised, c: Candidate): Finding {
  // Unmapped (ASCII or already normal text): the offsets are the raw ones, no span pair made.
  if (n.map === undefined)
    return {
      type: c.type,
      start: c.start,
      end: c.end,
      confidence: c.confidence,
      dataClass: c.dataClass,
      action: c.action,
    };
  const [start, end] = rawSpan(n, c.start, c.end);
  return { type: c.type, start, end, confidence: c.confidence, dataClass: c.dataClass, action: c.action };
}
