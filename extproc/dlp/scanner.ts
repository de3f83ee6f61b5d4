// compileDlp(policy) -> Scanner: the detection engine the gate's stages and `lm-gate dlp scan`
// share. Everything a scan needs (regexes, word lists, context words, actions) is built here,
// once per config snapshot; scan() only runs it.
//
// A scan normalises the text (normalize.ts), runs every enabled detector over it, validates
// each candidate, scores it with the context words before it, drops what scores under
// minConfidence, then keeps one finding per entity: of two overlapping candidates the higher
// priority wins (a PEM block over what is inside it, an IBAN over a card-like run in it), then the
// longer. Offsets are mapped back to the raw text.
import type { RE2JS } from 're2js';
import type { DlpPolicyConfig } from './config.ts';
import { type Anchor, BUILTIN_DETECTORS, type Detector, type DetectorEnv, type Hit } from './detectors.ts';
import { normalise } from './normalize.ts';
import { re2js } from './re2.ts';
import { type Candidate, resolveOverlaps, toFinding } from './resolve.ts';
import { DlpStream } from './stream.ts';
import type { Action, DataClass, Finding } from './types.ts';

export type { Candidate } from './resolve.ts';

/** A built-in detector as one scanner runs it. Every field is always present, so the scan loop
 * reads all detectors through one object shape: the Detector literals each have their own
 * (optional fields differ), and reading them in the per-candidate loop made its property
 * loads megamorphic (dense 16 KB text: about 575 -> 550 µs a scan). */
class CompiledDetector {
  readonly type: Detector['type'];
  readonly dataClass: DataClass;
  readonly priority: number;
  readonly maxLength: number;
  /** How far before `from` a scan starts: keyword-led shapes start up to KEYWORD_PREFIX before
   * the span they report; unbounded ones (PEM) are never re-entered. */
  readonly lookBack: number;
  readonly base: number;
  readonly check: Detector['check'];
  readonly quick: ((s: string) => boolean) | undefined;
  readonly scoreFirst: boolean;
  readonly context: Context;
  /** Global, or sticky when `seek` finds the positions to try. */
  readonly regex: RegExp;
  readonly seek: ((text: string, from: number) => number) | undefined;
  /** Called before the first seek of each scan (a keyword lead's per-text state). */
  readonly prepare: ((text: string) => void) | undefined;
  readonly action: Action;

  constructor(detector: Detector, action: Action, policyContext: boolean) {
    this.type = detector.type;
    this.dataClass = detector.dataClass;
    this.priority = detector.priority;
    this.maxLength = detector.maxLength;
    this.lookBack = detector.maxLength === Number.POSITIVE_INFINITY ? 0 : KEYWORD_PREFIX;
    this.base = detector.base ?? 0.9;
    this.check = detector.check;
    this.quick = detector.quick;
    this.scoreFirst = detector.scoreFirst === true;
    this.context = new Context(detector.raise, detector.lower, detector.requires, policyContext);
    const lead = detector.lead;
    if (lead !== undefined && 'seeker' in lead) {
      const { seek, prepare } = lead.seeker();
      this.seek = seek;
      this.prepare = prepare;
    } else {
      this.seek = seeker(lead);
      this.prepare = undefined;
    }
    // A private copy: lastIndex is per scanner, never shared across policies.
    const flags = this.seek ? `${detector.regex.flags.replace('g', '')}y` : detector.regex.flags;
    this.regex = new RegExp(detector.regex.source, flags);
    this.action = action;
  }
}

/** A detector's context words (all optional), in one shape for every detector and custom rule. */
class Context {
  readonly raise: RegExp | undefined;
  readonly lower: RegExp | undefined;
  readonly requires: RegExp | undefined;
  /** Whether scoring reads the window at all (policy words count for every detector). */
  readonly needsWindow: boolean;

  constructor(raise: RegExp | undefined, lower: RegExp | undefined, requires: RegExp | undefined, policy: boolean) {
    this.raise = raise;
    this.lower = lower;
    this.requires = requires;
    this.needsWindow = raise !== undefined || lower !== undefined || requires !== undefined || policy;
  }
}

/** The next position at or after `from` where a match can start, or -1 (Detector.lead). */
function seeker(lead: RegExp | Anchor | undefined): ((text: string, from: number) => number) | undefined {
  if (lead === undefined) return undefined;
  if (lead instanceof RegExp) {
    const re = new RegExp(lead.source, lead.flags);
    return (text, from) => {
      re.lastIndex = from;
      return re.exec(text)?.index ?? -1;
    };
  }
  const { literal, runChar, maxRun, emptyRun, after } = lead;
  const probe = lead.probe ?? 0;
  // Each occurrence of the literal at or after `from`, in order: found by its probe character
  // and confirmed, or (no probe) by indexOf of the whole literal.
  const key = probe > 0 ? literal[probe]! : literal;
  return (text, from) => {
    for (let p = text.indexOf(key, from + probe); p >= 0; p = text.indexOf(key, p + 1)) {
      const at = p - probe;
      if (probe > 0 && !text.startsWith(literal, at)) continue;
      if (after !== undefined && !after(text, at)) continue;
      let start = at;
      while (start > 0 && at - start <= maxRun && runChar(text.charCodeAt(start - 1))) start--;
      // No run where one is needed, or a run longer than a match allows.
      if (at - start > maxRun || (start === at && !emptyRun)) continue;
      if (start >= from) return start;
    }
    return -1;
  };
}

interface CustomRule {
  type: string;
  dataClass: DataClass;
  action: Action;
  maxLength: number;
  /** re2js for user patterns; a V8 regex of escaped literals for word lists. */
  re2?: RE2JS;
  words?: RegExp;
}

/** What the stream hold-back (stream.ts) needs to know about a policy. */
export interface HoldBounds {
  /** Longest match of a detector whose matches contain no whitespace. */
  maxRunLength: number;
  /** Trailing characters held whenever custom rules may match across whitespace (0: none). */
  customTail: number;
  /** Characters of already released text kept to re-scan for context and lookbehinds. */
  retain: number;
  maxBlockChars: number;
  dobEnabled: boolean;
  pemEnabled: boolean;
}

const RAISE = 0.1;
const LOWER = 0.5;
const POLICY_RAISE = 0.2;
const POLICY_LOWER = 0.3;
/** The longest keyword-and-separator prefix a detector matches before the span it reports
 * (aws_secret_access_key = "…", date of birth: …), which a stream must keep to re-scan. */
const KEYWORD_PREFIX = 96;
/** Detectors whose matches may contain spaces; the others' matches are whitespace-free runs. */
const SPACED = new Set(['CREDIT_CARD', 'IBAN', 'US_SSN', 'UK_NHS', 'PHONE', 'DATE_OF_BIRTH', 'PRIVATE_KEY']);

function wordsRegex(words: readonly string[], flags: string): RegExp | undefined {
  if (words.length === 0) return undefined;
  const escaped = [...words].sort((a, b) => b.length - a.length).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`(?<![\\p{L}\\p{N}_])(?:${escaped.join('|')})(?![\\p{L}\\p{N}_])`, flags);
}

export class Scanner {
  readonly policy: string;
  readonly minConfidence: number;
  readonly maskKeep: number;
  readonly onError: 'block' | 'allow';
  readonly timeBudgetMs: number;
  readonly bounds: HoldBounds;
  private readonly detectors: CompiledDetector[];
  private readonly custom: CustomRule[];
  private readonly env: DetectorEnv;
  private readonly window: number;
  private readonly policyRaise: RegExp | undefined;
  private readonly policyLower: RegExp | undefined;
  private readonly customContext: Context;
  private readonly hit: Hit = { start: 0, end: 0, confidence: 0 };

  constructor(config: DlpPolicyConfig) {
    this.policy = config.name;
    this.minConfidence = config.minConfidence;
    this.maskKeep = config.maskKeep;
    this.onError = config.onError;
    this.timeBudgetMs = config.timeBudgetMs;
    this.env = {
      defaultRegion: config.defaultRegion,
      maxBlockChars: config.maxBlockChars,
      pemEnd: { text: '', from: 0, endStart: -1, end: -1 },
      phoneMemo: new Map(),
    };
    this.window = config.context.window;
    this.policyRaise = wordsRegex(config.context.raise, 'iu');
    this.policyLower = wordsRegex(config.context.lower, 'iu');
    this.detectors = [];
    const policyContext = this.policyRaise !== undefined || this.policyLower !== undefined;
    this.customContext = new Context(undefined, undefined, undefined, policyContext);
    for (const detector of BUILTIN_DETECTORS) {
      const setting = config.detectors[detector.type];
      if (setting === 'off') continue;
      const action: Action = setting ?? (detector.dataClass === 'SECRET' ? 'block' : 'redact');
      this.detectors.push(new CompiledDetector(detector, action, policyContext));
    }
    this.custom = [
      ...config.patterns.map((p) => ({
        type: p.name,
        dataClass: p.dataClass,
        action: p.action,
        maxLength: p.maxLength,
        re2: re2js().compile(p.regex, p.caseInsensitive ? re2js().CASE_INSENSITIVE : 0),
      })),
      ...config.wordLists.map((w) => ({
        type: w.name,
        dataClass: w.dataClass,
        action: w.action,
        maxLength: Math.max(...w.words.map((x) => x.length)),
        words: wordsRegex(w.words, w.caseSensitive ? 'gu' : 'giu'),
      })),
    ];
    const enabled = new Set(this.detectors.map((d) => d.type));
    let maxRunLength = 0;
    for (const d of this.detectors) if (!SPACED.has(d.type)) maxRunLength = Math.max(maxRunLength, d.maxLength);
    let customTail = 0;
    for (const c of config.patterns) customTail = Math.max(customTail, c.maxLength);
    for (const w of config.wordLists)
      for (const word of w.words)
        if (/\s/.test(word)) customTail = Math.max(customTail, word.length);
        else maxRunLength = Math.max(maxRunLength, word.length);
    this.bounds = {
      maxRunLength,
      customTail,
      // A few more than the scan reaches back, so no match is tried at the very start of the
      // kept text, where a lookbehind would see less than a whole scan does.
      retain: this.window + KEYWORD_PREFIX + 8,
      maxBlockChars: config.maxBlockChars,
      dobEnabled: enabled.has('DATE_OF_BIRTH'),
      pemEnabled: enabled.has('PRIVATE_KEY'),
    };
  }

  /** Findings in `raw`, in order, one per entity, in raw UTF-16 offsets. */
  scan(raw: string): Finding[] {
    const n = normalise(raw);
    const candidates = resolveOverlaps(this.collect(n.text, 0));
    return candidates.map((c) => toFinding(n, c));
  }

  /** Forgets remembered validator answers (the phone memo): for measuring cold scans. */
  clearMemo(): void {
    this.env.phoneMemo.clear();
  }

  /** The detectors' shared state (stream.ts reuses the PEM END search). */
  get detectorEnv(): DetectorEnv {
    return this.env;
  }

  /** How many trailing UTF-16 units of `text` a stream would hold back now: the suffix that
   * could still be, or start, an unfinished match. Throws DlpStreamOverflow for an open private
   * key longer than maxBlockChars. */
  holdBack(text: string): number {
    const s = this.stream();
    s.push(text);
    return s.held;
  }

  /** A stream scanner for one response or request body read in pieces (stream.ts). */
  stream(): DlpStream {
    return new DlpStream(this);
  }

  /** Every validated candidate at or after normalised offset `from`, unsorted, overlaps kept. */
  collect(text: string, from: number): Candidate[] {
    const out: Candidate[] = [];
    const hit = this.hit;
    for (const detector of this.detectors) {
      const { regex, seek } = detector;
      if (detector.prepare !== undefined) detector.prepare(text);
      let at = Math.max(0, from - detector.lookBack);
      for (;;) {
        let m: RegExpExecArray | null;
        if (seek) {
          const pos = seek(text, at);
          if (pos < 0) break;
          regex.lastIndex = pos;
          m = regex.exec(text);
          if (m === null) {
            at = pos + 1;
            continue;
          }
        } else {
          regex.lastIndex = at;
          m = regex.exec(text);
          if (m === null) break;
        }
        hit.start = m.index;
        hit.end = m.index + m[0].length;
        hit.confidence = detector.base;
        let next = m.index + 1;
        // scoreFirst: check() keeps the start, so the score taken before it stands after it.
        const first =
          detector.quick !== undefined && !detector.quick(m[0])
            ? -1
            : detector.scoreFirst
              ? this.score(detector.context, text, hit.start, hit.confidence)
              : undefined;
        const ruledOut = first !== undefined && first < this.minConfidence;
        if (!ruledOut && detector.check(m, text, hit, this.env)) {
          const confidence = first ?? this.score(detector.context, text, hit.start, hit.confidence);
          if (confidence >= this.minConfidence) {
            if (hit.start >= from)
              out.push({
                type: detector.type,
                start: hit.start,
                end: hit.end,
                confidence,
                priority: detector.priority,
                dataClass: detector.dataClass,
                action: detector.action,
              });
            // A decided entity hides what starts inside it; a rejected one hides nothing, so
            // where a scan starts never changes what it finds (the stream contract needs that).
            next = Math.max(next, hit.end);
          }
        }
        at = next;
      }
    }
    for (const rule of this.custom) this.collectCustom(rule, text, from, out);
    return out;
  }

  private collectCustom(rule: CustomRule, text: string, from: number, out: Candidate[]): void {
    const push = (start: number, end: number) => {
      if (start < from || end - start > rule.maxLength || end === start) return;
      const confidence = this.score(this.customContext, text, start, 0.9);
      if (confidence < this.minConfidence) return;
      out.push({
        type: rule.type,
        start,
        end,
        confidence,
        priority: 20,
        dataClass: rule.dataClass,
        action: rule.action,
      });
    };
    if (rule.re2) {
      const m = rule.re2.matcher(text);
      let at = Math.max(0, from - rule.maxLength);
      while (at <= text.length && m.find(at)) {
        push(m.start(), m.end());
        at = m.end() > m.start() ? m.end() : m.start() + 1;
      }
      return;
    }
    const re = rule.words!;
    re.lastIndex = Math.max(0, from - rule.maxLength);
    for (let m = re.exec(text); m !== null; m = re.exec(text)) push(m.index, m.index + m[0].length);
  }

  private score(context: Context, text: string, start: number, base: number): number {
    if (!context.needsWindow) return base;
    // Context is on the entity's own line: a word in the line above describes something else.
    let before = text.slice(Math.max(0, start - this.window), start);
    const newline = before.lastIndexOf('\n');
    if (newline >= 0) before = before.slice(newline + 1);
    if (context.requires?.test(before) === false) return 0;
    let c = base;
    if (context.raise?.test(before)) c += RAISE;
    if (context.lower?.test(before)) c -= LOWER;
    if (this.policyRaise?.test(before)) c += POLICY_RAISE;
    if (this.policyLower?.test(before)) c -= POLICY_LOWER;
    return Math.round(Math.min(1, Math.max(0, c)) * 100) / 100;
  }
}

/** The scanner for one policy of a validated config (defaults applied). A policy as written is
 * compiled by compileDlp (dlp/compile.ts), which validates it first. */
export function scannerFor(policy: DlpPolicyConfig): Scanner {
  return new Scanner(policy);
}
