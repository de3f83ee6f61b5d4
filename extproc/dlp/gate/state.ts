// One request's DLP state, shared by the request and response stages and read by the audit: the
// pseudonym session, the findings (where, never what) and whether a scan failed open.

import type { InjectionAudit } from '../../guard/gate/audit.ts';
import type { RequestContext } from '../../pipeline/context.ts';
import { defineSlot } from '../../pipeline/slots.ts';
import type { FindingRecord } from './body-scan.ts';
import type { DlpSession } from './engine-port.ts';
import type { DlpPolicySetup } from './request-stage.ts';

export interface DlpState {
  session: DlpSession | undefined;
  /** The first MAX_AUDIT_FINDINGS findings (addFinding); `dropped` counts the rest. */
  findings: FindingRecord[];
  dropped: number;
  classes: Set<string>;
  /** A scan that failed and was let through by dlp onScanError: allow (the audit says so). */
  failedOpen: string | undefined;
  /** The policy dlp.request picked for this caller: dlp.response scans under the same one. */
  setup: DlpPolicySetup | undefined;
  /** Its name, for the audit (set by whichever stage picked it). */
  policy: string | undefined;
  /** What the prompt-injection guard found (extproc/guard/gate), when it ran. */
  injection: InjectionAudit | undefined;
}

const slot = defineSlot<DlpState>('dlp.state');

/** Findings kept per request, at most: a body full of e-mail addresses must not grow the
 * record without bound; the count goes on. */
export const MAX_AUDIT_FINDINGS = 100;

export function dlpState(ctx: RequestContext): DlpState {
  let s = ctx.get(slot);
  if (s === undefined) {
    s = {
      session: undefined,
      findings: [],
      dropped: 0,
      classes: new Set(),
      failedOpen: undefined,
      setup: undefined,
      policy: undefined,
      injection: undefined,
    };
    ctx.set(slot, s);
  }
  return s;
}

/** Keep a finding for the audit: a stream full of e-mail addresses must not grow the request's
 * state without bound, so past MAX_AUDIT_FINDINGS only the count grows. */
export function addFinding(s: DlpState, f: FindingRecord): void {
  if (s.findings.length < MAX_AUDIT_FINDINGS) s.findings.push(f);
  else s.dropped++;
}

export function peekDlpState(ctx: RequestContext): DlpState | undefined {
  return ctx.get(slot);
}

/** The audit record's dlp member, or undefined when no DLP stage looked at the request. */
export interface DlpAudit {
  findings: FindingRecord[];
  /** Findings beyond MAX_AUDIT_FINDINGS, counted but not listed. */
  findings_dropped: number;
  data_classes: string[];
  failed_open: string | null;
  /** The policy the request was scanned under; null when no stage picked one. */
  policy: string | null;
  /** Present when the injection guard judged the request. */
  injection?: InjectionAudit;
}

export function dlpAudit(ctx: RequestContext): DlpAudit | undefined {
  const s = ctx.get(slot);
  if (s === undefined) return undefined;
  return {
    findings: s.findings,
    findings_dropped: s.dropped,
    data_classes: [...s.classes].sort(),
    failed_open: s.failedOpen ?? null,
    policy: s.policy ?? null,
    ...(s.injection === undefined ? {} : { injection: s.injection }),
  };
}
