// DLP over a JSON body: every string value a model or a client reads is decoded, scanned and,
// where an action says so, replaced by a splice of its escaped bytes. Used for request bodies
// (before they go upstream) and for buffered JSON responses (before they reach the client).
//
// Every string value is read, not a list of known fields: a field the gate does not know of
// (a new content-part type, a tool schema's description) is still text the model sees, and
// scanning too much costs only time. What is skipped is the top-level model (routing and policy
// judge it) and inline media (base64 data: URLs), which are not text. Only a whole base64 data
// URL is media: a text that merely begins with `data:` (or a data URL of plain, percent-encoded
// text) is scanned like any other. Roles, types and ids, which the protocol needs intact, and
// member names are scanned in requests but never rewritten: a finding there refuses (a chat
// template may print a role or a tool call's id into the prompt, and a schema's property names
// are read by the model); in responses, where the server wrote them, they are skipped, except
// inside an object the model wrote (Ollama's tool-call arguments, FREE_KEYS), where a value under
// `id` is text like any other and a finding in a name refuses.
//
// Two phases. collectHits (pure, plain data: it runs on a parse-pool worker for large bodies)
// walks and scans; applyHits (main thread, it owns the request's pseudonym session) reserves the
// placeholders users typed, then replaces. Every text is scanned before any value gets a
// placeholder, so a typed `[EMAIL_1]` never becomes a real value's name.
import type { DlpFinding, DlpScanner, DlpSession } from './engine-port.ts';
import {
  type DecodedString,
  decodeJsonNumber,
  decodeJsonString,
  decodeJsonText,
  encodeJsonInner,
  FREE_KEYS,
  forEachJsonString,
  isInlineMedia,
} from './json-strings.ts';

const SKIP_KEYS = new Set(['role', 'type', 'id', 'tool_call_id', 'object', 'finish_reason', 'system_fingerprint']);
const OPEN_BRACKET = 0x5b;

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

/** One string with findings: its span (quotes included), path and findings (UTF-16 offsets in
 * the decoded string). */
export interface StringHit {
  start: number;
  end: number;
  path: string;
  findings: readonly DlpFinding[];
  /** A number (in an object the model wrote), not a string: [start, end) has no quotes, and a
   * rewrite puts a string in its place. */
  bare?: true;
}

/** A string that cannot be rewritten, with findings: a member name (its path ends in `{key}`,
 * never the name itself, which is the value found) or, in a request, a protocol value (a role, a
 * type, an id: servers match them, so a placeholder there would break the call). */
export interface FixedHit {
  path: string;
  findings: readonly DlpFinding[];
}

/** What the scan phase found: plain data (it crosses threads by structured clone). */
export interface CollectedHits {
  hits: StringHit[];
  /** Member names and protocol values with findings (CollectOptions.keys). */
  fixedHits?: FixedHit[];
  /** Spans of strings without findings that hold a `[`: their typed placeholders are reserved,
   * and in responses restored. */
  bracketed: [number, number][];
  chars: number;
  /** Each hit's decoded string, when the scan ran on this thread (keepTexts): applyHits uses
   * them instead of decoding again. Absent from a worker's result (it would not clone). */
  texts?: DecodedString[];
}

export interface CollectOptions {
  /** Skip the top-level `model` member (the request's: routing rewrites it). */
  skipModel: boolean;
  /** Give up (throw ScanBudgetExceeded) past this many ms; Infinity on a worker, where the
   * message deadline bounds it instead. */
  budgetMs: number;
  /** Keep each hit's decoded string for applyHits (a scan on the thread that applies). */
  keepTexts?: boolean;
  /** Requests: scan member names (a tool schema's property names are text the model reads) and
   * the protocol values the scan otherwise skips (roles, types, ids: a chat template may print
   * them into the prompt); both found clean before are remembered per scanner (cleanNames). */
  keys?: boolean;
}

export class ScanBudgetExceeded extends Error {
  constructor() {
    super('DLP scan exceeded its time budget');
    this.name = 'ScanBudgetExceeded';
  }
}

/** Scan every string of `body` from `from` (the first byte of its object). Throws on a walk or
 * engine error, or when the budget runs out: the caller fails closed. */
export function collectHits(body: Buffer, from: number, scanner: DlpScanner, opts: CollectOptions): CollectedHits {
  const out: CollectedHits = { hits: [], bracketed: [], chars: 0 };
  const texts: DecodedString[] | undefined = opts.keepTexts ? [] : undefined;
  if (texts) out.texts = texts;
  const started = performance.now();
  const keys = opts.keys === true;
  const clean = cleanNames(scanner);
  /** Names with findings: they are the values found, so no path the audit keeps may spell them. */
  let dirty: string[] | undefined;
  /** Scan a string that cannot be rewritten; its findings, if any (names found clean remembered). */
  const fixed = (text: string): DlpFinding[] | undefined => {
    if (text.length === 0 || clean.has(text)) return undefined;
    const found = scanner.scan(text);
    if (found.length > 0) return found.map(plainFinding);
    if (text.length <= CLEAN_NAME_MAX_CHARS) {
      if (clean.size >= CLEAN_NAMES_MAX) clean.clear();
      clean.add(text);
    }
    return undefined;
  };
  const addFixed = (hit: FixedHit): void => {
    if (out.fixedHits === undefined) out.fixedHits = [hit];
    else out.fixedHits.push(hit);
  };
  const onKey = (name: string, _depth: number, path: () => string, free: boolean): void => {
    // A response's names are the server's, but for those the model wrote (free data).
    if (!keys && !free) return;
    const findings = fixed(name);
    if (findings === undefined) return;
    if (dirty === undefined) dirty = [name];
    else dirty.push(name);
    const at = path();
    addFixed({ path: at === '' ? '{key}' : `${at}.{key}`, findings });
  };
  forEachJsonString(
    body,
    from,
    (start, end, key, depth, path, free) => {
      if (end - start <= 2) return;
      if (key !== undefined && !free && SKIP_KEYS.has(key)) {
        // A request's role, type or id: scanned, never rewritten (a finding there refuses).
        if (!keys) return;
        const findings = fixed(decodeJsonText(body, start, end));
        if (findings !== undefined) addFixed({ path: path(), findings });
        return;
      }
      if (opts.skipModel && depth === 1 && key === 'model') return;
      if (isInlineMedia(body, start, end)) return;
      if (performance.now() - started > opts.budgetMs) throw new ScanBudgetExceeded();
      const s = decodeJsonString(body, start, end);
      out.chars += s.text.length;
      const found = scanner.scan(s.text);
      if (found.length === 0) {
        // Bounded to the string: an unbounded indexOf would scan the rest of the body per string.
        if (hasByte(body, start, end, OPEN_BRACKET)) out.bracketed.push([start, end]);
        return;
      }
      // A worker's hits cross threads by structured clone, and a finding may be an engine class
      // instance, which would not clone: plain copies there. On the applying thread nothing is
      // cloned, so the engine's findings serve as they are (a copy per finding was garbage).
      const findings = texts !== undefined ? found : found.map(plainFinding);
      out.hits.push({ start, end, path: path(), findings });
      texts?.push(s);
    },
    onKey,
    FREE_KEYS,
    (start, end, _key, _depth, path) => {
      // A number the model wrote (a card number given as one): scanned like a string's text.
      if (performance.now() - started > opts.budgetMs) throw new ScanBudgetExceeded();
      const s = decodeJsonNumber(body, start, end);
      const found = scanner.scan(s.text);
      if (found.length === 0) return;
      out.hits.push({
        start,
        end,
        path: path(),
        findings: texts !== undefined ? found : found.map(plainFinding),
        bare: true,
      });
      texts?.push(s);
    },
  );
  if (dirty !== undefined) {
    // A path through a name with a finding (a value under it, or a name inside it) says `{key}`.
    const mask = (p: string) => dirty!.reduce((q, name) => q.replaceAll(name, '{key}'), p);
    for (const h of out.hits) h.path = mask(h.path);
    for (const h of out.fixedHits!) h.path = mask(h.path);
  }
  return out;
}

/** Member names a scanner found nothing in: bodies repeat a few (`content`, `properties`,
 * `description`), and a scan is ~0.7 µs where a lookup is a few tens of ns. Per scanner (one per
 * policy and config snapshot, per thread), bounded. */
const cleanNameSets = new WeakMap<DlpScanner, Set<string>>();
const CLEAN_NAMES_MAX = 4096;
const CLEAN_NAME_MAX_CHARS = 64;

function cleanNames(scanner: DlpScanner): Set<string> {
  let set = cleanNameSets.get(scanner);
  if (set === undefined) {
    set = new Set();
    cleanNameSets.set(scanner, set);
  }
  return set;
}

function plainFinding(f: DlpFinding): DlpFinding {
  return { type: f.type, start: f.start, end: f.end, dataClass: f.dataClass, action: f.action };
}

/** body[start, end) holds `byte` (no subarray: one Buffer object per string scanned). */
function hasByte(body: Buffer, start: number, end: number, byte: number): boolean {
  for (let i = start; i < end; i++) if (body[i] === byte) return true;
  return false;
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
}

/** Turn the hits into findings for the audit and splices of the body. Request: values are
 * replaced in place. Response (`restore`): each string with a finding or a `[` is rebuilt whole,
 * this request's placeholders restored in the text between findings. */
export function applyHits(
  body: Buffer,
  collected: CollectedHits,
  session: DlpSession,
  where: 'request' | 'response',
  restore: DlpSession | undefined,
): BodyScan {
  const out: BodyScan = { findings: [], classes: new Set(), edits: [], blocked: undefined };
  // Indexed loops on the request path: this runs once a request, and for-of allocated an
  // iterator result per element until the function was optimised (bench:alloc's 'next').
  const hits = collected.hits;
  for (let k = 0; k < hits.length; k++) {
    const h = hits[k]!;
    for (let i = 0; i < h.findings.length; i++) {
      const f = h.findings[i]!;
      out.findings.push({ type: f.type, action: f.action, where, path: h.path, start: f.start, end: f.end });
      out.classes.add(f.dataClass);
      if (f.action === 'block') out.blocked ??= f;
    }
  }
  // A name cannot be redacted (two names could become one, which servers read differently), nor
  // a role, type or id (servers match them): a finding there blocks, whatever its action, but warn.
  for (const h of collected.fixedHits ?? []) {
    for (const f of h.findings) {
      out.findings.push({
        type: f.type,
        action: f.action === 'warn' ? 'warn' : 'block',
        where,
        path: h.path,
        start: f.start,
        end: f.end,
      });
      out.classes.add(f.dataClass);
      if (f.action !== 'warn') out.blocked ??= f;
    }
  }
  if (out.blocked !== undefined) return out;
  const restoring = restore?.issued ? restore : undefined;
  // Each hit's string decoded once, for the reservation and the edits both: by the scan when it
  // ran on this thread, else here (a 16 KB prompt decoded twice was a third of a DLP request's
  // allocation).
  const decoded =
    collected.texts ?? collected.hits.map((h) => (h.bare ? decodeJsonNumber : decodeJsonString)(body, h.start, h.end));
  if (restoring === undefined) {
    for (const [start, end] of collected.bracketed) session.reserve(decodeJsonString(body, start, end).text);
    for (let k = 0; k < decoded.length; k++) session.reserve(decoded[k]!.text);
  } else {
    for (const [start, end] of collected.bracketed) {
      const text = decodeJsonString(body, start, end).text;
      const restored = restoring.restore(text);
      if (restored !== text) out.edits.push({ start: start + 1, end: end - 1, insert: encodeJsonInner(restored) });
    }
  }
  const encoded = new EncodedReplacements();
  for (let k = 0; k < collected.hits.length; k++) {
    const h = collected.hits[k]!;
    const s = decoded[k]!;
    if (h.bare) {
      // A number: rewritten whole, as a string (a placeholder is no number).
      let rebuilt = '';
      let at = 0;
      for (const f of h.findings) {
        if (f.action === 'warn') continue;
        rebuilt += s.text.slice(at, f.start) + session.replace(s.text.slice(f.start, f.end), f);
        at = f.end;
      }
      if (at > 0) out.edits.push({ start: h.start, end: h.end, insert: quoted(rebuilt + s.text.slice(at)) });
      continue;
    }
    if (restoring === undefined) {
      for (let i = 0; i < h.findings.length; i++) {
        const f = h.findings[i]!;
        if (f.action === 'warn') continue;
        const replacement = session.replace(s.text.slice(f.start, f.end), f);
        out.edits.push({ start: s.byteAt(f.start), end: s.byteAt(f.end), insert: encoded.of(replacement) });
      }
      continue;
    }
    let rebuilt = '';
    let at = 0;
    for (const f of h.findings) {
      if (f.action === 'warn') continue;
      rebuilt += restoring.restore(s.text.slice(at, f.start)) + session.replace(s.text.slice(f.start, f.end), f);
      at = f.end;
    }
    rebuilt += restoring.restore(s.text.slice(at));
    if (rebuilt !== s.text) out.edits.push({ start: h.start + 1, end: h.end - 1, insert: encodeJsonInner(rebuilt) });
  }
  return out;
}

function quoted(text: string): Buffer {
  return Buffer.concat([QUOTE_BYTE, encodeJsonInner(text), QUOTE_BYTE]);
}
const QUOTE_BYTE = Buffer.from('"');

/** The replacements of one body, each encoded once: a body's findings mostly share a few
 * (`[REDACTED:EMAIL]` for every address), and the splices only read their bytes. Per call, so
 * nothing of a request outlives it; the first few distinct ones are remembered, which bounds
 * the search. */
class EncodedReplacements {
  private readonly texts: string[] = [];
  private readonly bytes: Buffer[] = [];

  of(text: string): Buffer {
    const known = this.texts.indexOf(text);
    if (known >= 0) return this.bytes[known]!;
    const b = encodeJsonInner(text);
    if (this.texts.length < 8) {
      this.texts.push(text);
      this.bytes.push(b);
    }
    return b;
  }
}
