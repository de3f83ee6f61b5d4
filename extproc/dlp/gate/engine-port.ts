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
  /** How many trailing UTF-16 units of `text` may still be part of a match that more text could
   * complete or extend (a stream holds them back). Infinity: hold everything (an open PEM block). */
  holdBack(text: string): number;
  /** How many units before a text's start can change what matches in it (context words): a
   * stream rescans that much of what it already released, without re-deciding it. */
  readonly lookBehind: number;
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
  /** The session issued at least one placeholder (so responses need restoring). */
  readonly issued: boolean;
}

export interface DlpEngine {
  readonly scanner: DlpScanner;
  newSession(): DlpSession;
}
