// What the gate's DLP stages need of the detection engine (extproc/dlp), and nothing more. The
// stages find the texts (request JSON strings, response events), decide where they may cut a
// stream, splice bodies and record findings; the engine decides what matches and what replaces
// it. Kept narrow so the stages are tested with a tiny scanner and the engine can change inside.

export type DlpAction = 'block' | 'redact' | 'mask' | 'pseudonymise' | 'warn';

/** One detected entity in a text: [start, end) in UTF-16 units of the raw text scanned. */
export interface DlpFinding {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  /** PII, PHI, PCI, SECRET or a custom class: what ctx.dataClasses carries. */
  readonly dataClass: string;
  readonly action: DlpAction;
}

export interface DlpScanner {
  /** Findings in `text`, sorted by start, not overlapping. May throw: the stages fail closed. */
  scan(text: string): readonly DlpFinding[];
  /** A text that arrives in pieces, scanned with the same result as whole. */
  stream(): DlpTextStream;
}

/** The streaming contract: push the pieces in order, then end(). Each call says up to where (an
 * absolute UTF-16 offset that never decreases) the text is decided, and the findings newly
 * decided, all before that offset. Text before it may be released once those findings' actions
 * are applied; the rest must be held. For every split, the findings together equal scan(whole). */
export interface DlpTextStream {
  /** Throws DlpHoldOverflow when what it must hold (an open PEM block) outgrows its cap. */
  push(piece: string): DlpStreamStep;
  end(): DlpStreamStep;
}

export interface DlpStreamStep {
  decided: number;
  findings: readonly DlpFinding[];
}

/** A stream held more than its cap waiting for a match to end: fail closed. */
export class DlpHoldOverflow extends Error {
  constructor() {
    super('DLP hold-back exceeded its cap');
    this.name = 'DlpHoldOverflow';
  }
}

/** One request's pseudonyms: values replaced in the request, restored in the response for the
 * same caller. Never shared across requests. */
export interface DlpSession {
  /** What replaces `value` (the raw text of finding `f`): a redaction, a mask or a placeholder. */
  replace(value: string, f: DlpFinding): string;
  /** `text` with every placeholder this session issued replaced by its value. */
  restore(text: string): string;
  /** Trailing units of `text` that may be the start of a placeholder cut by a chunk border. */
  restoreHoldBack(text: string): number;
  /** Note the placeholders a user wrote in `text` (call on every request text before any
   * replace): they never name a value, so restore leaves them as typed. */
  reserve(text: string): void;
  /** The session issued at least one placeholder (so responses need restoring). */
  readonly issued: boolean;
}

export interface DlpEngine {
  readonly scanner: DlpScanner;
  newSession(): DlpSession;
}
