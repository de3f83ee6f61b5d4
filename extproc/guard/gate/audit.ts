// What the audit record keeps of the injection guard's judgement: scores, rule ids and what was
// done, never the text.
import type { ClassifierResult } from '../classifier.ts';

export interface ClassifierAudit {
  /** score: it answered; otherwise why it did not (timeout, unreachable, bad_status,
   * bad_answer, aborted). */
  result: 'score' | Extract<ClassifierResult, { ok: false }>['error'];
  score: number | null;
  ms: number;
  /** The text sent was cut to classifier.maxChars. */
  truncated: boolean;
  /** When it failed: what its onError did (block refused the request, allow let it through). */
  on_error: 'block' | 'allow' | null;
}

export interface InjectionAudit {
  /** The highest heuristic score of any text, 0..1. */
  score: number;
  threshold: number;
  /** Rule ids that fired in any text (scored below the threshold too). */
  rules: string[];
  /** JSON path of the highest-scoring text; null when none scored. */
  path: string | null;
  /** The heuristics or the classifier judged it an injection. */
  detected: boolean;
  /** The policy's action: block (refused) or flag (admitted, recorded). */
  action: 'block' | 'flag';
  /** Absent when no classifier is configured, or the heuristics had already blocked. */
  classifier?: ClassifierAudit;
}
