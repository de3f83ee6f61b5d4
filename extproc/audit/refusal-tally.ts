// Refusals the audit sink itself caused (503 audit_unavailable), counted instead of kept one by
// one once audit.maxRefusalBytes of them wait (sink.ts). During a long outage at a high request
// rate one record per refusal would make memory grow without bound; the tally keeps every such
// refusal counted, by tenant, route, API, status and code, with the first and last of each, and
// the sink writes it as one chained `refusal_summary` line when it can write again
// (docs/audit.md, "Slow or full disk").
//
// Bounded whatever comes in: at most MAX_GROUPS distinct keys (the rest fold into `other`), and
// every string it keeps is cut to MAX_CHARS (a client-supplied x-request-id can be long).
import type { AuditRecord } from './record.ts';

/** The error code of a refusal the sink caused (extproc/pipeline/errors.ts). */
export const SINK_REFUSAL_CODE = 'audit_unavailable';
export const MAX_GROUPS = 64;
export const MAX_CHARS = 256;

/** A sink refusal's record, serialised (newline-terminated), with the facts the tally keys on:
 * a gate worker sends these, so the main thread's one writer tallies without parsing a line. */
export interface SinkRefusal {
  line: string;
  time: string;
  requestId: string;
  tenant: string | null;
  route: string | null;
  api: string;
  status: number | null;
  code: string;
}

/** The record is a refusal the audit sink caused, with nothing else to write (no capture). */
export function isSinkRefusal(record: AuditRecord, capture: string | undefined): boolean {
  // Records built by hand (tests, tools) may lack `error`: optional chaining, not a crash.
  return capture === undefined && record.error?.code === SINK_REFUSAL_CODE;
}

export function sinkRefusal(record: AuditRecord, line: string): SinkRefusal {
  return {
    line,
    time: record.time,
    requestId: record.request_id,
    tenant: record.principal?.tenant ?? null,
    route: record.route,
    api: record.endpoint?.api ?? 'unknown',
    status: record.status,
    code: SINK_REFUSAL_CODE,
  };
}

interface Span {
  count: number;
  first_time: string;
  last_time: string;
  first_request_id: string;
  last_request_id: string;
}

interface Group extends Span {
  tenant: string | null;
  route: string | null;
  api: string;
  status: number | null;
  code: string;
}

const clip = (s: string) => (s.length > MAX_CHARS ? s.slice(0, MAX_CHARS) : s);
const clipOrNull = (s: string | null) => (s === null ? null : clip(s));

function span(r: SinkRefusal): Span {
  const time = clip(r.time);
  const id = clip(r.requestId);
  return { count: 1, first_time: time, last_time: time, first_request_id: id, last_request_id: id };
}

/** First and last by request time (RFC 3339 UTC strings sort as times): records of a gate
 * worker's batch can arrive a little after later ones. */
function extend(s: Span, r: SinkRefusal): void {
  s.count++;
  if (r.time < s.first_time) {
    s.first_time = clip(r.time);
    s.first_request_id = clip(r.requestId);
  }
  if (r.time >= s.last_time) {
    s.last_time = clip(r.time);
    s.last_request_id = clip(r.requestId);
  }
}

export class RefusalTally {
  private readonly groups = new Map<string, Group>();
  private other: Span | null = null;
  private readonly maxGroups: number;
  /** Refusals counted. */
  count = 0;

  constructor(maxGroups = MAX_GROUPS) {
    this.maxGroups = maxGroups;
  }

  add(r: SinkRefusal): void {
    this.count++;
    const key = JSON.stringify([r.tenant, r.route, r.api, r.status, r.code]);
    const group = this.groups.get(key);
    if (group !== undefined) extend(group, r);
    else if (this.groups.size < this.maxGroups)
      this.groups.set(key, {
        tenant: clipOrNull(r.tenant),
        route: clipOrNull(r.route),
        api: clip(r.api),
        status: r.status,
        code: clip(r.code),
        ...span(r),
      });
    else if (this.other === null) this.other = span(r);
    else extend(this.other, r);
  }

  /** The summary line's own fields, serialised (`{…}`): the chain adds type, seq and prev. */
  json(nowMs: number): string {
    let first: string | undefined;
    let last: string | undefined;
    const spans: Span[] = [...this.groups.values()];
    if (this.other !== null) spans.push(this.other);
    for (const s of spans) {
      if (first === undefined || s.first_time < first) first = s.first_time;
      if (last === undefined || s.last_time > last) last = s.last_time;
    }
    return JSON.stringify({
      time: new Date(nowMs).toISOString(),
      reason: `audit sink unavailable: ${SINK_REFUSAL_CODE} refusals past audit.maxRefusalBytes were counted here, not recorded one by one`,
      refused: this.count,
      first_time: first ?? null,
      last_time: last ?? null,
      groups: [...this.groups.values()],
      other: this.other,
    });
  }
}
