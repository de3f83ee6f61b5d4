// DLP over a JSON body: every string value a model or a client reads is decoded, scanned and,
// where an action says so, replaced by a splice of its escaped bytes. Used for request bodies
// (before they go upstream) and for buffered JSON responses (before they reach the client).
//
// Every string value is read, not a list of known fields: a field the gate does not know of
// (a new content-part type, a tool schema's description) is still text the model sees, and
// scanning too much costs only time. What is skipped is what cannot carry a user's text and
// that other stages or the protocol need intact: the top-level model (routing and policy judge
// it), roles, types, ids, and inline media (data: URLs, base64 audio), which are not text.
import type { DlpEngine, DlpFinding, DlpSession } from './engine-port.ts';
import { type DecodedString, decodeJsonString, encodeJsonInner, forEachJsonString } from './json-strings.ts';

const SKIP_KEYS = new Set(['role', 'type', 'id', 'tool_call_id', 'object', 'finish_reason', 'system_fingerprint']);
const DATA_URL = Buffer.from('"data:');

/** A finding as the audit keeps it: where, never what. */
export interface FindingRecord {
  type: string;
  action: string;
  where: 'request' | 'response';
  /** JSON path of the string (request, buffered response) or the stream channel. */
  path: string;
  /** UTF-16 units in that string or channel's text, end exclusive. */
  start: number;
  end: number;
}

export interface BodyEdit {
  start: number;
  end: number;
  insert: Buffer;
}

export interface BodyScan {
  findings: FindingRecord[];
  classes: Set<string>;
  edits: BodyEdit[];
  /** The first finding whose action is block, if any. */
  blocked: DlpFinding | undefined;
  /** Characters scanned. */
  chars: number;
}

export interface BodyScanOptions {
  where: 'request' | 'response';
  /** Skip the top-level `model` member (the request's: routing rewrites it). */
  skipModel: boolean;
  /** Give up (throw) once scanning has taken longer than this, in ms since `startedMs`. */
  budgetMs: number;
  now: () => number;
  /** Restore this session's placeholders in every string (responses). */
  restore?: DlpSession | undefined;
}

export class ScanBudgetExceeded extends Error {
  constructor() {
    super('DLP scan exceeded its time budget');
    this.name = 'ScanBudgetExceeded';
  }
}

/** Scan every string of `body` from `from` (the object's first byte). Throws on a walk or engine
 * error, or when the budget runs out: the caller fails closed. */
export function scanJsonBody(
  body: Buffer,
  from: number,
  engine: DlpEngine,
  session: DlpSession,
  opts: BodyScanOptions,
): BodyScan {
  const out: BodyScan = { findings: [], classes: new Set(), edits: [], blocked: undefined, chars: 0 };
  const scanner = engine.scanner;
  const started = opts.now();
  const restore = opts.restore?.issued ? opts.restore : undefined;
  // Two passes: every text is scanned (and the placeholders users typed in it reserved) before
  // any value is given a placeholder, so a typed `[EMAIL_1]` never becomes a real value's name.
  const hits: { start: number; end: number; s: DecodedString; findings: readonly DlpFinding[] }[] = [];
  forEachJsonString(body, from, (start, end, key, depth, path) => {
    if (out.blocked !== undefined || end - start <= 2) return;
    if (key !== undefined && SKIP_KEYS.has(key)) return;
    if (opts.skipModel && depth === 1 && key === 'model') return;
    if (body.indexOf(DATA_URL, start) === start) return;
    if (opts.now() - started > opts.budgetMs) throw new ScanBudgetExceeded();
    const s = decodeJsonString(body, start, end);
    out.chars += s.text.length;
    if (restore === undefined) session.reserve(s.text);
    const findings = scanner.scan(s.text);
    if (findings.length === 0) {
      if (restore !== undefined && s.text.includes('[')) hits.push({ start, end, s, findings });
      return;
    }
    const where = path();
    for (const f of findings) {
      out.findings.push({ type: f.type, action: f.action, where: opts.where, path: where, start: f.start, end: f.end });
      out.classes.add(f.dataClass);
      if (f.action === 'block') {
        out.blocked ??= f;
        return;
      }
    }
    hits.push({ start, end, s, findings });
  });
  if (out.blocked !== undefined) return out;
  for (const { start, end, s, findings } of hits) {
    if (restore === undefined) {
      for (const f of findings) {
        if (f.action === 'warn') continue;
        const replacement = session.replace(s.text.slice(f.start, f.end), f);
        out.edits.push({ start: s.byteAt(f.start), end: s.byteAt(f.end), insert: encodeJsonInner(replacement) });
      }
      continue;
    }
    // A response string is rebuilt whole: restored gaps, replaced findings.
    let rebuilt = '';
    let at = 0;
    for (const f of findings) {
      if (f.action === 'warn') continue;
      rebuilt += restore.restore(s.text.slice(at, f.start)) + session.replace(s.text.slice(f.start, f.end), f);
      at = f.end;
    }
    rebuilt += restore.restore(s.text.slice(at));
    if (rebuilt !== s.text) out.edits.push({ start: start + 1, end: end - 1, insert: encodeJsonInner(rebuilt) });
  }
  return out;
}
