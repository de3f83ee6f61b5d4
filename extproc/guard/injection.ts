// Prompt-injection and jailbreak heuristics: a scored ruleset over the text a model will read.
// Each rule that fires adds its weight; weights combine as independent evidence (noisy-OR:
// 1 − Π(1 − w)), so two weak signals make a stronger one and no sum passes 1. The ruleset looks
// through the two common ways of hiding an instruction from a human reviewer: Unicode "tag"
// characters (U+E0020–U+E007E spell invisible ASCII) and base64-wrapped text; what they hide is
// decoded and scored as well.
//
// Every pattern is linear in the text: alternations of literals joined by bounded gaps of a
// negated class ([^.\n]{0,40}), no nested quantifiers, so a hostile text cannot make one
// backtrack. Decoding is bounded too (MAX_DECODED_RUNS runs of at most MAX_RUN characters).

export interface InjectionHit {
  /** Rule id, e.g. injection.override; injection.base64/... when found inside decoded text. */
  rule: string;
  weight: number;
  /** UTF-16 offsets in the scored text; for a decoded hit, the span of the encoded run. */
  start: number;
  end: number;
}

export interface InjectionScore {
  score: number;
  hits: InjectionHit[];
}

interface Rule {
  id: string;
  weight: number;
  re: RegExp;
  /** Lower-case literals one of which every match contains: a rule whose anchors are all
   * absent is skipped, so an ordinary text costs a few indexOf scans, not a regex per rule. */
  anchors: readonly string[];
}

const gap = (n: number) => `[^.\\n]{0,${n}}`;
const rx = (s: string, flags = 'giu') => new RegExp(s, flags);
const VERB = '(?:ignore|disregard|forget|override|skip)';
const ML_QUALIFIER =
  '(?:anteriores|previas|précédentes|antérieures|ci-dessus|vorherigen|bisherigen|obigen|vorigen|prévias|anteriori|precedenti)';
const ML_NOUN = '(?:instrucciones|instructions|consignes|anweisungen|instruktionen|instruções|istruzioni)';

/** The phrase rules. Weights are how sure one match alone makes us (block at 0.5 by default). */
const RULES: readonly Rule[] = [
  {
    id: 'injection.override',
    anchors: ['ignore', 'disregard', 'forget', 'override', 'skip'],
    weight: 0.6,
    re: rx(
      `\\b${VERB}\\b${gap(16)}\\b(?:previous|prior|above|earlier|preceding|all|your|system)\\b${gap(16)}\\b(?:instructions?|prompts?|directives|guidelines)\\b`,
    ),
  },
  {
    id: 'injection.override',
    anchors: ['ignore', 'disregard', 'forget', 'override', 'skip'],
    weight: 0.5,
    // "ignore all previous rules": only with the qualifier right before, since "ignore the
    // noise in previous data rules" is an ordinary sentence.
    re: rx(`\\b${VERB}\\b${gap(16)}\\b(?:previous|prior|above|earlier|all|your)\\s+(?:rules|context|directions)\\b`),
  },
  {
    id: 'injection.override',
    anchors: ['ignora', 'ignore', 'olvida', 'oublie', 'ignoriere', 'vergiss', 'esquece', 'dimentica'],
    weight: 0.6,
    // Spanish, French, German, Portuguese, Italian: the same override. The qualifier
    // ("previous") is required: "Vergiss nicht, die Anweisungen zu lesen" is an ordinary sentence.
    re: rx(
      `\\b(?:ignora|ignore[sz]?|olvida|oubliez?|ignoriere|vergiss|ignorar|esquece|dimentica)\\b${gap(24)}(?:\\b${ML_QUALIFIER}\\b${gap(12)}\\b${ML_NOUN}\\b|\\b${ML_NOUN}\\s+${ML_QUALIFIER}\\b)`,
    ),
  },
  {
    id: 'injection.reveal_prompt',
    anchors: ['prompt', 'instructions', 'rules', 'system message'],
    weight: 0.5,
    re: rx(
      `\\b(?:reveal|show|print|repeat|output|leak|display|tell me|what (?:is|are|was))\\b${gap(24)}\\byour (?:hidden |initial |original |secret )?(?:system prompt|prompt|instructions|rules|system message)\\b`,
    ),
  },
  {
    id: 'injection.reveal_prompt_generic',
    anchors: ['prompt', 'developer message', 'initial instructions', 'text above'],
    // Alone below the default threshold: "show me the system prompt engineering guide" is a
    // question about prompts, not an attack on this one.
    weight: 0.3,
    re: rx(
      `\\b(?:reveal|show|print|repeat|output|leak|display)\\b${gap(24)}\\b(?:system prompt|hidden prompt|developer message|initial instructions|the text above)\\b`,
    ),
  },
  {
    id: 'injection.persona',
    anchors: ['dan', 'stan', 'aim', 'unfiltered', 'uncensored', 'unrestricted', 'jailbroken', 'evil', 'without'],
    weight: 0.6,
    re: rx(
      `\\b(?:you are now|from now on you are|act as|pretend (?:to be|you are)|role-?play as|you will be|become)\\b${gap(40)}\\b(?:DAN|STAN|AIM|unfiltered|uncensored|unrestricted|jailbroken|evil|without (?:any )?(?:restrictions|filters|limits|rules|guidelines))\\b`,
    ),
  },
  { id: 'injection.persona', anchors: ['do anything now'], weight: 0.5, re: rx('\\bdo anything now\\b') },
  {
    id: 'injection.mode_switch',
    anchors: [' mode'],
    weight: 0.4,
    re: rx(`\\b(?:developer|god|jailbreak|debug|sudo|admin) mode\\b${gap(40)}\\b(?:enabled|on|activated|engaged)\\b`),
  },
  {
    id: 'injection.evasion',
    anchors: ['bypass', 'disable', 'turn off', 'ignore', 'circumvent', 'no ethical', 'no moral', 'no safety'],
    weight: 0.4,
    re: rx(
      `\\b(?:bypass|disable|turn off|ignore|circumvent)\\b${gap(40)}\\b(?:safety|content|moderation|ethical)? ?(?:filters?|guardrails|safeguards|restrictions|policies|moderation)\\b|\\bno (?:ethical|moral|safety) (?:guidelines|restrictions|limits|constraints)\\b`,
    ),
  },
  {
    id: 'injection.fake_delimiter',
    anchors: ['<|', '[inst]', '[/inst]', '<<sys>>', '<system', '</system', '<assistant', '</assistant'],
    // A chat template's role markers inside a user's text try to open a turn of their own.
    weight: 0.6,
    re: rx(
      '<\\|im_(?:start|end)\\|>|<\\|(?:system|endoftext|eot_id|start_header_id)\\|>|\\[/?INST\\]|<<SYS>>|</?(?:system|assistant)>',
    ),
  },
  {
    id: 'injection.fake_heading',
    anchors: ['##'],
    // A markdown heading that announces new instructions: weak alone (documents have headings).
    weight: 0.3,
    re: rx('^#{2,}[ \\t]*(?:system(?: prompt)?|new instructions|override)[ \\t]*:?[ \\t]*$', 'gimu'),
  },
];

const escapeRe = (w: string) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Every rule's anchors in one alternation: one pass over the lower-cased text tells which
 * rules can match at all (about 2 ms a MB, where an indexOf per anchor took 15). */
const ANCHORS = new RegExp([...new Set(RULES.flatMap((r) => r.anchors))].map(escapeRe).join('|'), 'g');

const TAG_CHARS = /[\u{E0000}-\u{E007F}]+/gu;
/** Every tag character's UTF-16 high surrogate: its absence rules them all out cheaply. */
const TAG_HIGH_SURROGATE = '\uDB40';
const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
const ZERO_WIDTH = /[\u200B-\u200D\u2060\uFEFF]/;
const ZERO_WIDTH_IN_WORD = /\p{L}[\u200B-\u200D\u2060\uFEFF]+\p{L}/gu;
// The lookbehind makes only the start of a run a candidate: without it every letter of every
// word is one, and the scan costs twice as much.
const BASE64_RUN = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}/g;

export const MAX_DECODED_RUNS = 16;
export const MAX_RUN = 64 * 1024;

const combine = (hits: readonly InjectionHit[]) => 1 - hits.reduce((p, h) => p * (1 - h.weight), 1);

function phraseHits(text: string, into: InjectionHit[], prefix: string, span?: [number, number]): void {
  const from = into.length;
  const lower = text.toLowerCase();
  const present = new Set<string>();
  ANCHORS.lastIndex = 0;
  for (let m = ANCHORS.exec(lower); m; m = ANCHORS.exec(lower)) present.add(m[0]);
  if (present.size === 0) return;
  for (const rule of RULES) {
    const id = prefix + rule.id;
    if (into.some((h, i) => i >= from && h.rule === id)) continue;
    if (!rule.anchors.some((a) => present.has(a))) continue;
    rule.re.lastIndex = 0;
    // One hit per rule is evidence enough; more of the same phrase is not more evidence.
    const m = rule.re.exec(text);
    if (m)
      into.push({
        rule: id,
        weight: rule.weight,
        start: span ? span[0] : m.index,
        end: span ? span[1] : m.index + m[0].length,
      });
  }
}

/** Tag characters U+E0020–U+E007E are invisible ASCII: the text they spell. */
function decodeTags(run: string): string {
  let out = '';
  for (const ch of run) {
    const cp = ch.codePointAt(0)! - 0xe0000;
    if (cp >= 0x20 && cp <= 0x7e) out += String.fromCharCode(cp);
  }
  return out;
}

/** A base64 run that decodes to mostly printable UTF-8 text; undefined for binary data (an
 * image, a key) which is not an instruction. */
function decodeBase64Text(run: string): string | undefined {
  const bytes = Buffer.from(run, 'base64');
  if (bytes.length < 12) return undefined;
  const text = bytes.toString('utf8');
  let printable = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x0d || c === 0x09 || (c >= 0xa0 && c !== 0xfffd)) printable++;
  }
  return printable / text.length >= 0.9 ? text : undefined;
}

/** Scores one text. Hidden text (tag characters, base64) is decoded once, not recursively. */
export function scoreInjection(text: string): InjectionScore {
  const hits: InjectionHit[] = [];
  phraseHits(text, hits, '');

  TAG_CHARS.lastIndex = 0;
  let tagged = false;
  const mayHaveTags = text.includes(TAG_HIGH_SURROGATE);
  for (let m = mayHaveTags ? TAG_CHARS.exec(text) : null; m; m = TAG_CHARS.exec(text)) {
    if (!tagged) {
      hits.push({ rule: 'injection.unicode_tags', weight: 0.7, start: m.index, end: m.index + m[0].length });
      tagged = true;
    }
    phraseHits(decodeTags(m[0]), hits, 'injection.unicode_tags/', [m.index, m.index + m[0].length]);
  }

  BIDI.lastIndex = 0;
  const bidi = BIDI.exec(text);
  if (bidi) hits.push({ rule: 'injection.bidi_control', weight: 0.3, start: bidi.index, end: bidi.index + 1 });

  ZERO_WIDTH_IN_WORD.lastIndex = 0;
  let zw = 0;
  let zwFirst: RegExpExecArray | null = null;
  const mayHaveZeroWidth = ZERO_WIDTH.test(text);
  for (
    let m = mayHaveZeroWidth ? ZERO_WIDTH_IN_WORD.exec(text) : null;
    m && zw < 3;
    m = ZERO_WIDTH_IN_WORD.exec(text)
  ) {
    zwFirst ??= m;
    zw++;
    ZERO_WIDTH_IN_WORD.lastIndex = m.index + m[0].length - 1;
  }
  if (zw >= 3 && zwFirst)
    hits.push({
      rule: 'injection.zero_width',
      weight: 0.2,
      start: zwFirst.index,
      end: zwFirst.index + zwFirst[0].length,
    });
  if (zw > 0) {
    // Zero-width characters split a phrase so the rules above miss it: score it without them.
    const joined = text.replace(/[\u200B-\u200D\u2060\uFEFF]/g, '');
    const before = hits.length;
    phraseHits(joined, hits, 'injection.zero_width/', [0, text.length]);
    // Only what the plain text did not already show.
    for (let i = hits.length - 1; i >= before; i--)
      if (hits.slice(0, before).some((h) => h.rule === hits[i]!.rule.slice('injection.zero_width/'.length)))
        hits.splice(i, 1);
  }

  BASE64_RUN.lastIndex = 0;
  let runs = 0;
  for (let m = BASE64_RUN.exec(text); m && runs < MAX_DECODED_RUNS; m = BASE64_RUN.exec(text)) {
    if (m[0].length > MAX_RUN) continue;
    runs++;
    const decoded = decodeBase64Text(m[0]);
    if (decoded === undefined) continue;
    const before = hits.length;
    phraseHits(decoded, hits, 'injection.base64/', [m.index, m.index + m[0].length]);
    // An instruction wrapped to get past a reviewer is worse than one in the open.
    if (hits.length > before)
      hits.push({ rule: 'injection.base64', weight: 0.3, start: m.index, end: m.index + m[0].length });
  }
  return { score: Math.round(combine(hits) * 1000) / 1000, hits };
}
