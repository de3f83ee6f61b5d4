// The built-in detectors: one shape regex each, a validator, a data class and the context that
// moves its confidence. All run on normalised text (normalize.ts).
//
// Linear time. V8 regexes backtrack, so each shape below is written so that the work per start
// position is bounded by a constant: every quantifier is bounded ({m,n}), adjacent quantified
// parts cannot trade characters (a separator between them is mandatory or not in both classes),
// and a negative lookbehind of the entity's own class pins where a match may start, so a long
// run of entity-like characters is entered once, not at each of its positions. The total work is
// therefore O(text length); dlp-linear.test.ts feeds each detector pathological 1 MB inputs under
// a time bound. Patterns a user supplies run on re2js instead (patterns.ts).

import { isIPv6 } from 'node:net';
import { type KeywordLead, keywordLead } from './keyword-lead.ts';
import { phoneValid } from './phone.ts';
import type { BuiltinType, DataClass } from './types.ts';
import {
  cardIssuer,
  entropy,
  githubChecksumValid,
  IBAN_LENGTHS,
  ibanValid,
  jwtHeaderValid,
  looksLikePlaceholder,
  luhn,
  nhsValid,
  ssnValid,
} from './validators.ts';

/** Where a candidate really is and how sure the detector is; reused across calls. */
export interface Hit {
  start: number;
  end: number;
  confidence: number;
}

export interface DetectorEnv {
  /** Region for phone numbers written without a country code. */
  defaultRegion: string;
  /** PEM blocks longer than this count up to this many characters (nothing past it is released). */
  maxBlockChars: number;
  /** Phone candidates already judged by libphonenumber. */
  phoneMemo: Map<string, boolean>;
  /** The last END-line search (nextPemEnd), reused while it still answers. */
  pemEnd: { text: string; from: number; endStart: number; end: number };
}

export interface Detector {
  type: BuiltinType;
  dataClass: DataClass;
  /** Which of two overlapping findings wins: the higher priority, then the longer. */
  priority: number;
  /** Global, on normalised text. */
  regex: RegExp;
  /** Where a match can start, found faster than by trying the regex at every position: a
   * regex whose match positions include every start of `regex` (a keyword or literal prefix),
   * or an anchor found with indexOf and the run of characters before it (see anchorSeek), or
   * keywords looked for only before separators (keyword-lead.ts). The regex is then tried only
   * there. */
  lead?: RegExp | Anchor | KeywordLead;
  /** The longest span a match can have, in normalised characters (the stream hold-back bound). */
  maxLength: number;
  /** Reads the match into `hit`; false rejects it. `hit` starts as the whole match. */
  check(m: RegExpExecArray, text: string, hit: Hit, env: DetectorEnv): boolean;
  /** Confidence before context words; 0.9 when absent. */
  base?: number;
  /** Words in the context window before the entity that raise / lower its confidence. */
  raise?: RegExp;
  lower?: RegExp;
  /** A finding only with one of these words in the context window before it. */
  requires?: RegExp;
  /** check() never moves the start, and is expensive: score the context first and skip the
   * check when the context alone rules the candidate out. */
  scoreFirst?: boolean;
  /** A cheap test of the match alone, run before scoring and check(): false rejects it. */
  quick?(s: string): boolean;
}

const yes = () => true;
/** A lead literal that starts the match itself: no run before it. */
const none = () => false;

/** A literal every match contains (`@`, `://`) preceded by a run of the characters a match
 * starts with; a match can only start where that run starts (each shape's lookbehind says so),
 * and never if the run is longer than `maxRun`. */
export interface Anchor {
  literal: string;
  runChar: (c: number) => boolean;
  maxRun: number;
  /** A match may start at the literal itself (`::1`). */
  emptyRun?: boolean;
  /** Which character of `literal` is searched for (default 0): the rarest in ordinary text.
   * indexOf of a literal that opens with a common letter stops at every such letter ('eyJ' at
   * each 'e': 1.2-2.4 ms per MiB, against 0.03-0.09 for its 'J'). */
  probe?: number;
  /** What must follow the literal at `at` for a match to be possible (a cheap necessary
   * condition: positions failing it are never handed to the regex). */
  after?: (text: string, at: number) => boolean;
}

const isLocalPart = (c: number) =>
  (c >= 97 && c <= 122) ||
  (c >= 65 && c <= 90) ||
  (c >= 48 && c <= 57) ||
  c === 46 ||
  c === 95 ||
  c === 37 ||
  c === 43 ||
  c === 45;
const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
const isScheme = (c: number) =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 43 || c === 46 || c === 45;

/** Groups of an IBAN before a digit run: what follows is the IBAN's tail, not a new entity. */
const IBAN_GROUPS_BEFORE = /[A-Z]{2}\d{2}(?: [A-Z0-9]{4})+ $/;
/** IBAN_GROUPS_BEFORE at `at`, tried only where its last characters are (a space after a
 * letter or digit group): most digit runs follow something else and skip the slice and regex. */
function ibanGroupsBefore(text: string, at: number): boolean {
  if (at < 10 || text.charCodeAt(at - 1) !== 32) return false;
  const c = text.charCodeAt(at - 2);
  if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90))) return false;
  return IBAN_GROUPS_BEFORE.test(text.slice(Math.max(0, at - 40), at));
}

// --- PCI, PII, PHI -----------------------------------------------------------------------------

/** Whether a card-shaped run (digits, with single spaces or dashes between them) is either
 * ungrouped or grouped the way cards are printed, with one separator kind: 4-4-4-4 then an
 * optional group of 1-9 digits, 4-4-4 then 1-9 digits, 4-6-5 or 4-6-4. */
function cardGrouping(s: string): boolean {
  let separator = 0;
  let groups = 0;
  // The first three groups' lengths and the last one's (what the printed shapes differ in).
  let g0 = 0;
  let g1 = 0;
  let g2 = 0;
  let g3 = 0;
  let g4 = 0;
  let run = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : -1;
    if (c >= 48 && c <= 57) {
      run++;
      continue;
    }
    if (c !== -1) {
      if (separator === 0) separator = c;
      else if (c !== separator) return false;
    }
    if (groups === 0) g0 = run;
    else if (groups === 1) g1 = run;
    else if (groups === 2) g2 = run;
    else if (groups === 3) g3 = run;
    else if (groups === 4) g4 = run;
    groups++;
    run = 0;
  }
  if (groups === 1) return true;
  if (groups === 3) return g0 === 4 && g1 === 6 && (g2 === 5 || g2 === 4);
  if (groups === 4) return g0 === 4 && g1 === 4 && g2 === 4 && g3 >= 1 && g3 <= 9;
  if (groups === 5) return g0 === 4 && g1 === 4 && g2 === 4 && g3 === 4 && g4 >= 1 && g4 <= 9;
  return false;
}

const creditCard: Detector = {
  type: 'CREDIT_CARD',
  dataClass: 'PCI',
  priority: 60,
  // 13–19 digits, single spaces or dashes between them; not inside a longer digit or word run.
  // The lookbehind follows the first digit (it looks back over it) rather than preceding it:
  // the regex engine then rejects every non-digit position on its first character, which more
  // than halves its time on digit-dense text.
  regex: /\d(?<![\w-]\d|\d[ -]\d)(?:[ -]?\d){12,18}(?![\w]|[ -]\d)/g,
  maxLength: 37,
  check(m, text) {
    const s = m[0];
    // The tail of an IBAN written in groups is not a card, even when its digits pass Luhn.
    if (ibanGroupsBefore(text, m.index)) return false;
    // Grouped: one separator kind, in the groupings cards are printed with. Read in place (a
    // compact copy, the groups and their shape as strings were most of a DLP scan's garbage).
    if (!cardGrouping(s)) return false;
    return cardIssuer(s) !== undefined && luhn(s);
  },
  raise: /card|visa|master|amex|credit|debit|payment|cc\b/i,
};

const iban: Detector = {
  type: 'IBAN',
  dataClass: 'PII',
  priority: 70,
  // The lookbehind after the first letter, as for cards (a shape that opens with a lookbehind
  // is tried at every position; one that opens with a class skips what cannot start it).
  regex: /[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9])/g,
  maxLength: 4 + 30 * 2,
  check(m, _text, hit) {
    const s = m[0];
    const len = IBAN_LEN(s);
    if (len === undefined) return false;
    // The IBAN is the first `len` characters; anything the greedy shape took after is not part of it.
    let count = 0;
    let k = 0;
    for (; k < s.length && count < len; k++) if (s[k] !== ' ') count++;
    if (count < len) return false;
    if (k < s.length && s[k] !== ' ') return false;
    const compact = s.slice(0, k).replace(/ /g, '');
    if (!ibanValid(compact)) return false;
    hit.end = hit.start + k;
    return true;
  },
};
const IBAN_LEN = (s: string) => IBAN_LENGTHS[s.slice(0, 2)];

const SSN_WORDS = /\bssn|social security|soc\.? ?sec|\bss ?(?:#|no\b|number)|\btin\b|taxpayer/i;
const ssnDashed: Detector = {
  type: 'US_SSN',
  dataClass: 'PII',
  priority: 45,
  regex: /\d(?<![\w-]\d)\d{2}-\d{2}-\d{4}(?![\w]|-\d)/g,
  maxLength: 11,
  check: (m) => ssnValid(m[0].replace(/-/g, '')),
  raise: SSN_WORDS,
};
const NOT_SSN_LABEL =
  /(?:order|invoice|tracking|account|acct|ref|reference|ticket|case|item|product|transaction|customer|id)\b[\s.:#=-]{0,3}(?:no\.?|number|#)?[\s.:#=-]{0,3}$/i;
const ssnPlain: Detector = {
  type: 'US_SSN',
  dataClass: 'PII',
  priority: 44,
  regex: /\d(?<![\w-]\d)\d{8}(?![\w]|-\d)/g,
  maxLength: 9,
  check: (m) => ssnValid(m[0]),
  requires: SSN_WORDS,
  lower: NOT_SSN_LABEL,
};

const nhs: Detector = {
  type: 'UK_NHS',
  dataClass: 'PHI',
  priority: 46,
  // The lookbehind after the first digit, as for cards.
  regex: /\d(?<![\w-]\d)\d{2}([ -]?)\d{3}\1\d{4}(?![\w]|[ -]\d)/g,
  maxLength: 12,
  check: (m) => nhsValid(m[0].replace(/[ -]/g, '')),
  requires: /\bnhs|patient|clinical|clinic\b|hospital|\bgp\b|surgery|medical|health|\bward\b|diagnos|prescri/i,
  // A time label right before the digits: a Unix timestamp that happens to pass mod-11.
  // or another kind of number named right before it (invoice 4235572903).
  lower:
    /(?:timestamp|epoch|unix(?: time)?|created|updated|modified|_at|\btime|\bts|order|invoice|tracking|account|acct|ref|reference|ticket|transaction|customer)\b[\s.:=#"'-]{0,3}(?:no\.?|number|#)?[\s.:#=-]{0,3}$/i,
};

const MONTHS =
  'jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?';
/** A date that starts with a digit: ISO, numeric day/month/year either way round, "12 March
 * 1990", CJK; and the "12, 1990" of "March 12, 1990", whose month check() takes in. Written
 * after its first digit (\d{4} is that digit and \d{3}, \d{1,2} that digit and \d?): the regex
 * consumes the first digit, then looks behind it, so the engine rejects every other position on
 * one character. */
const DATE_AFTER_FIRST_DIGIT = `(?:\\d{3}[-/.]\\d{1,2}[-/.]\\d{1,2}|\\d?[-/.]\\d{1,2}[-/.](?:\\d{4}|\\d{2})|\\d?(?:st|nd|rd|th)?\\.? (?:${MONTHS})\\.?,? \\d{4}|\\d?(?:st|nd|rd|th)?,? \\d{4}|\\d{3}年\\d{1,2}月\\d{1,2}日)`;
/** Letters and numbers beyond ASCII on either side, which the date regex's ASCII lookarounds
 * do not see (check() rejects them, as the Unicode lookarounds the regex had did). */
const WORD_BEFORE = /[\p{L}\p{N}]$/u;
const NUMBER_AFTER = /^\p{N}/u;
const DAY_YEAR = /^\d{1,2}(?:st|nd|rd|th)?,? \d{4}$/i;
const MONTH_BEFORE = new RegExp(`(?<![\\p{L}])(?:${MONTHS})\\.? $`, 'iu');
/** Words that present a date as a birth date, in the languages the gate's users write. */
export const DOB_KEYWORDS =
  'd\\.?o\\.?b\\.?|date of birth|birth ?date|birth_date|birthday|born(?: on)?|geburtsdatum|geboren(?: am)?|date de naissance|n[ée]e? le|fecha de nacimiento|nacid[oa] el|data di nascita|data de nascimento|出生日期|生年月日|誕生日';
/** A birth-date keyword right before the date: `DOB: `, `born on `, `"dob": "`. */
const DOB_BEFORE = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${DOB_KEYWORDS})(?![\\p{L}\\p{N}])[\\s"':=]{0,6}(?:on )?$`, 'iu');
const dateOfBirth: Detector = {
  type: 'DATE_OF_BIRTH',
  dataClass: 'PII',
  priority: 40,
  // The date; check() requires the keyword before it (within 48 characters: keyword and
  // separator are at most 30).
  // Not Unicode mode (the 'u' flag made it three times slower): on normalised text its classes
  // and case folding are the ASCII ones (NFKC has replaced ſ and K, the only characters that fold
  // to ASCII letters), and check() applies the Unicode part of the lookarounds.
  regex: new RegExp(`\\d(?<![A-Za-z0-9_]\\d)${DATE_AFTER_FIRST_DIGIT}(?!\\d)`, 'gi'),
  maxLength: 14 + 24,
  check(m, text, hit) {
    let start = hit.start;
    if (start > 0 && text.charCodeAt(start - 1) >= 128 && WORD_BEFORE.test(text.slice(Math.max(0, start - 2), start)))
      return false;
    if (text.charCodeAt(hit.end) >= 128 && NUMBER_AFTER.test(text.slice(hit.end, hit.end + 2))) return false;
    if (DAY_YEAR.test(m[0])) {
      const month = MONTH_BEFORE.exec(text.slice(Math.max(0, start - 14), start));
      if (month === null) return false;
      start -= month[0].length;
    }
    if (!plausibleDate(text.slice(start, hit.end))) return false;
    if (!DOB_BEFORE.test(text.slice(Math.max(0, start - 48), start))) return false;
    hit.start = start;
    return true;
  },
};

function plausibleDate(date: string): boolean {
  const nums = date.match(/\d+/g) ?? [];
  if (nums.length === 3) {
    const [a, b, c] = nums.map(Number) as [number, number, number];
    const [y, mo, d] = nums[0]!.length === 4 ? [a, b, c] : [c, b, a];
    const year = y < 100 ? y + 1900 : y;
    if (year < 1880 || year > 2100) return false;
    // Day-first or month-first: either order must give a real day and month.
    return (mo >= 1 && mo <= 12 && d >= 1 && d <= 31) || (d >= 1 && d <= 12 && mo >= 1 && mo <= 31);
  }
  if (nums.length === 2) {
    const year = Number(nums[1]);
    const day = Number(nums[0]);
    return year >= 1880 && year <= 2100 && day >= 1 && day <= 31;
  }
  return false;
}

/** Extensions that follow `name@2x.` in asset names: not top-level domains. */
const FILE_TLDS = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'svg',
  'webp',
  'ico',
  'bmp',
  'tif',
  'tiff',
  'avif',
  'pdf',
  'js',
  'mjs',
  'ts',
  'css',
  'scss',
  'json',
  'html',
  'htm',
  'xml',
  'txt',
  'md',
  'yaml',
  'yml',
  'zip',
  'gz',
  'tgz',
  'mp4',
  'mp3',
  'wav',
  'woff',
  'woff2',
  'ttf',
  'map',
  'lock',
  'py',
  'rb',
  'go',
  'rs',
  'java',
  'exe',
  'dll',
]);
/** A match whose last label is a file extension (the TLD, any case: ASCII letters only). */
const FILE_TLD_END = new RegExp(`\\.(?:${[...FILE_TLDS].join('|')})$`, 'i');
/** A retina suffix right after the `@` (sticky: lastIndex is set before each test). */
const RETINA = /\d+(?:\.\d+)?x\./iy;
const email: Detector = {
  type: 'EMAIL',
  dataClass: 'PII',
  priority: 55,
  // Not after `:` or `/` (the pass@host of a DSN, a URL's user), not an @mention or npm scope
  // (no local part), not a `git@host:` remote.
  regex:
    /(?<![\w.%+\-@:/])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9][A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}(?![\w\-@]|\.[A-Za-z0-9]|:[^\s])/g,
  maxLength: 64 + 1 + 8 * 64 + 24,
  lead: { literal: '@', runChar: isLocalPart, maxRun: 64 },
  check(m) {
    const s = m[0];
    // Both tests read the match in place (a lowered copy of the TLD and of the domain were
    // most of what an e-mail address allocated).
    if (FILE_TLD_END.test(s)) return false;
    // icon@2x.png, sprite@3x.webp and similar retina suffixes.
    RETINA.lastIndex = s.indexOf('@') + 1;
    if (RETINA.test(s)) return false;
    return !s.includes('..');
  },
};

const PHONE_WORDS =
  /phone|\btel\b|telephone|mobile|cell|\bcall|fax|contact|whats ?app|\bsms\b|text me|reach me|ring\b/i;
const PHONE_MEMO = 1024;
/** Regions of the North American Numbering Plan (+1). */
const NANP = new Set([
  'US',
  'CA',
  'AG',
  'AI',
  'AS',
  'BB',
  'BM',
  'BS',
  'DM',
  'DO',
  'GD',
  'GU',
  'JM',
  'KN',
  'KY',
  'LC',
  'MP',
  'MS',
  'PR',
  'SX',
  'TC',
  'TT',
  'VC',
  'VG',
  'VI',
]);
/** NXX-NXX-XXXX, optionally after a trunk 1: ten digits whose area code and exchange start 2-9. */
function nanpShape(s: string): boolean {
  let d = s.replace(/\D/g, '');
  if (d.length === 11 && d[0] === '1') d = d.slice(1);
  return d.length === 10 && d[0]! >= '2' && d[3]! >= '2';
}
/** A label right before the number says it is some other kind of number. */
const NOT_PHONE_LABEL =
  /(?:order|part|tracking|isbn|invoice|serial|sku|ref|reference|account|acct|ticket|case|item|model|product|confirmation|transaction|parcel|shipment|customer|po|batch|lot|timestamp|epoch|unix|nhs|id)\b[\s.:#=-]{0,3}(?:no\.?|nr\.?|number|num|#|id)?[\s.:#=-]{0,3}$/i;
/** After a phone number's first character: not inside a word, a version or another number
 * (the lookbehind, read from before that character), and 6 more characters of a number after it. */
const PHONE_START = '(?<=(?<![\\w+\\-./)]|[\\d+)][ .-]).)(?=[\\d +().-]{6})';
const phone: Detector = {
  type: 'PHONE',
  dataClass: 'PII',
  priority: 30,
  base: 0.7,
  scoreFirst: true,
  // +CC, an optional (area), then digit groups with one separator between them. The lookahead
  // wants the 7 characters a number of 7 digits at least spans: every short digit run in a text
  // (3 items, 2024) is passed over inside the regex engine instead of becoming a match that
  // quick() rejects. It changes no accepted match: it consumes nothing and holds wherever a
  // match of 7 digits starts. Written as one branch per first character (+, ( or a digit), each
  // consuming it before the lookarounds (PHONE_START): a shape that opens with a lookaround is
  // tried at every position, one that opens with a class skips what cannot start it (dense
  // text: 2.7 -> 1.7 ms per MiB, the same matches).
  regex: new RegExp(
    `(?:\\+${PHONE_START}\\d{1,3}[ .-]?(?:\\(\\d{1,5}\\)[ .-]?)?\\d{1,15}|\\(${PHONE_START}\\d{1,5}\\)[ .-]?\\d{1,15}|\\d${PHONE_START}\\d{0,14})(?:[ .-]\\d{1,10}){0,5}(?![\\w]|[.-]\\d)`,
    'g',
  ),
  maxLength: 4 + 8 + 15 + 5 * 11,
  quick(s) {
    let digits = 0;
    for (let k = 0; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c >= 48 && c <= 57) digits++;
    }
    return digits >= 7 && digits <= 15;
  },
  check(m, text, _hit, env) {
    const s = m[0];
    // The tail of an IBAN written in groups (NL80 SSKV 5722 4039 19) is not a phone.
    if (ibanGroupsBefore(text, m.index)) return false;
    // Dates and dotted versions are not numbers anyone dials.
    if (/^\d{4}-\d{2}-\d{2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$/.test(s)) return false;
    if (/^\d+(?:\.\d+){2,}$/.test(s) && !s.startsWith('+')) return false;
    // North American numbers have a fixed shape: settle most digit runs without the parser.
    if (s.charCodeAt(0) !== 43 && NANP.has(env.defaultRegion) && !nanpShape(s)) return false;
    // Validation (libphonenumber's answer, phone.ts) is the slow part of a scan; streams
    // re-scan their retained context, and texts repeat numbers, so its answers are remembered
    // (a bounded map, per scanner).
    const known = env.phoneMemo.get(s);
    if (known !== undefined) return known;
    const valid = phoneValid(s, env.defaultRegion);
    if (env.phoneMemo.size >= PHONE_MEMO) env.phoneMemo.clear();
    env.phoneMemo.set(s, valid);
    return valid;
  },
  raise: PHONE_WORDS,
  lower: NOT_PHONE_LABEL,
};

const ipv4: Detector = {
  type: 'IP_ADDRESS',
  dataClass: 'PII',
  priority: 35,
  base: 0.8,
  // Not a dotted run with more parts (an OID, a build number), not after a letter (v10.2.3.4).
  regex:
    /(?<![\w.-]|\w:)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w-]|\.\d)/g,
  maxLength: 15,
  check: yes,
  lower:
    /(?:version|\bver|\bv|build|release|\btag|firmware|\boid|snmp|image|chart|sdk|update|upgrade|patch)[\s:=#@-]*(?:to |from |is )?$/i,
};

/** Another colon after at most 4 hex digits following the colon at `at`. */
function secondColon(text: string, at: number): boolean {
  const end = Math.min(text.length, at + 6);
  for (let k = at + 1; k < end; k++) {
    const c = text.charCodeAt(k);
    if (c === 58) return true;
    if (!isHex(c)) return false;
  }
  return false;
}

const ipv6: Detector = {
  type: 'IP_ADDRESS',
  dataClass: 'PII',
  priority: 35,
  // Hex groups and colons, at least two colons; net.isIPv6 decides. Brackets and a port or
  // prefix length are outside the span.
  regex:
    /(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|\.\d)/g,
  maxLength: 45,
  // The shape's lookahead wants a second colon after at most 4 hex digits: most colons in a
  // text (`key: value`, times, URLs) have none and never reach the regex.
  lead: { literal: ':', runChar: isHex, maxRun: 4, emptyRun: true, after: secondColon },
  check(m) {
    const s = m[0];
    if (!isIPv6(s)) return false;
    // `::` alone or tiny shapes like `a::b` are too rarely addresses in prose.
    return s.replace(/:/g, '').length >= 4;
  },
  lower: /(?:version|\bver|\bv|build|release|\btag)[\s:=#@-]*$/i,
};

// --- Secrets -----------------------------------------------------------------------------------

const awsAccessKey: Detector = {
  type: 'AWS_ACCESS_KEY',
  dataClass: 'SECRET',
  priority: 80,
  regex: /A(?<![A-Za-z0-9]A)(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])/g,
  maxLength: 20,
  // AWS documentation's example keys end in EXAMPLE.
  check: (m) => !m[0].endsWith('EXAMPLE'),
};

const awsSecretKey: Detector = {
  type: 'AWS_SECRET_KEY',
  dataClass: 'SECRET',
  priority: 75,
  // The value of a secret-access-key setting, in env, ini, JSON, YAML or CLI form.
  regex:
    /(?<![A-Za-z0-9])(?:aws_?secret_?access_?key(?:_?id)?|secret_?access_?key|aws_?secret(?:_?key)?|secretaccesskey)["']?\s{0,4}(?::=|=>|[:=]|\s)\s{0,4}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
  maxLength: 40,
  // Case spelled out: V8 scans a case-sensitive alternation far faster than an /i one.
  lead: /[aA][wW][sS]|[sS][eE][cC][rR][eE][tT]/g,
  check(m, _text, hit) {
    const key = m[1]!;
    // A 40-hex value is a git SHA or a digest; AWS documentation's example ends in EXAMPLEKEY.
    if (/^[0-9a-f]{40}$/i.test(key) || key.endsWith('EXAMPLEKEY') || looksLikePlaceholder(key)) return false;
    hit.start = hit.end - key.length;
    return /[A-Z]/.test(key) && /[a-z]/.test(key);
  },
};

/** `gh` of `ghp_` (and o, u, s, r) or of `github_pat_`. */
function githubPrefix(text: string, at: number): boolean {
  const c = text.charCodeAt(at + 2);
  if (text.charCodeAt(at + 3) === 95 && (c === 112 || c === 111 || c === 117 || c === 115 || c === 114)) return true;
  return text.startsWith('github_pat_', at);
}

const githubToken: Detector = {
  type: 'GITHUB_TOKEN',
  dataClass: 'SECRET',
  priority: 80,
  regex: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])/g,
  maxLength: 93,
  lead: { literal: 'gh', runChar: none, maxRun: 0, emptyRun: true, after: githubPrefix },
  // Classic tokens carry a CRC32 checksum; fine-grained ones have no public checksum, so their
  // exact shape is the test.
  check: (m) => (m[0].startsWith('github_pat_') ? !looksLikePlaceholder(m[0]) : githubChecksumValid(m[0])),
};

const slackToken: Detector = {
  type: 'SLACK_TOKEN',
  dataClass: 'SECRET',
  priority: 80,
  regex: /(?<![\w-])xox[abposr]-(?:\d{8,14}-){1,3}[A-Za-z0-9]{24,48}(?![\w-])/g,
  maxLength: 5 + 3 * 15 + 48,
  lead: { literal: 'xox', runChar: none, maxRun: 0, emptyRun: true },
  check: (m) => !looksLikePlaceholder(m[0]),
};

const stripeKey: Detector = {
  type: 'STRIPE_KEY',
  dataClass: 'SECRET',
  priority: 80,
  // Secret and restricted keys; publishable pk_ keys are public by design.
  regex: /(?<![\w])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99}(?![\w])/g,
  maxLength: 8 + 99,
  lead: { literal: 'k_', probe: 1, runChar: (c) => c === 115 || c === 114, maxRun: 1 },
  check: (m) => !looksLikePlaceholder(m[0].slice(8)),
};

const gcpApiKey: Detector = {
  type: 'GCP_API_KEY',
  dataClass: 'SECRET',
  priority: 80,
  regex: /(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])/g,
  maxLength: 39,
  lead: { literal: 'AIza', probe: 2, runChar: none, maxRun: 0, emptyRun: true },
  check: (m) => !looksLikePlaceholder(m[0].slice(4)),
};

/** The header of a PEM private key; its END line is found by search (see check). */
export const PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g;
const PEM_END = /-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g;
const privateKey: Detector = {
  type: 'PRIVATE_KEY',
  dataClass: 'SECRET',
  priority: 100,
  regex: PEM_BEGIN,
  // Unbounded: held until its END line or maxBlockChars (stream.ts).
  maxLength: Number.POSITIVE_INFINITY,
  // From BEGIN through the END line, whatever the newlines look like in between (real, `\n`
  // escapes, indented YAML). Without an END line the key runs to the end of the text, capped:
  // a truncated key is still a leak.
  check(_m, text, hit, env) {
    const end = nextPemEnd(text, hit.end, env);
    const limit = hit.start + env.maxBlockChars;
    hit.end = end >= 0 && end <= limit ? end : Math.min(text.length, limit);
    return true;
  },
};

/** Where the first private-key END line at or after `from` ends, -1 if none. BEGIN lines are
 * met in increasing order within one scan, so one search serves every BEGIN before the END it
 * found (and "none" serves every later one): a text of many BEGINs is still one pass. */
export function nextPemEnd(text: string, from: number, env: DetectorEnv): number {
  const memo = env.pemEnd;
  if (memo.text === text && memo.from <= from && (memo.end < 0 || memo.endStart >= from)) return memo.end;
  PEM_END.lastIndex = from;
  const m = PEM_END.exec(text);
  memo.text = text;
  memo.from = from;
  memo.endStart = m ? m.index : -1;
  memo.end = m ? m.index + m[0].length : -1;
  return memo.end;
}

const jwt: Detector = {
  type: 'JWT',
  dataClass: 'SECRET',
  priority: 85,
  // Bounded so that a whole JWT fits the smallest stream hold (maxBlockChars).
  regex: /(?<![\w-])eyJ[A-Za-z0-9_-]{8,509}\.[A-Za-z0-9_-]{2,2800}\.[A-Za-z0-9_-]{0,700}(?![\w-]|\.[\w-])/g,
  maxLength: 3 + 509 + 1 + 2800 + 1 + 700,
  lead: { literal: 'eyJ', probe: 2, runChar: none, maxRun: 0, emptyRun: true },
  check: (m) => jwtHeaderValid(m[0].slice(0, m[0].indexOf('.'))),
};

const connectionString: Detector = {
  type: 'CONNECTION_STRING',
  dataClass: 'SECRET',
  priority: 90,
  // scheme://user:password@host…, the span the whole string up to whitespace or a quote.
  regex: /(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]{1,30}:\/\/[^\s:/@'"<>`]{0,128}:([^\s@/'"`]{1,256})@[^\s'"<>`]{1,1024}/g,
  maxLength: 32 + 3 + 128 + 1 + 256 + 1 + 1024,
  lead: { literal: '://', runChar: isScheme, maxRun: 31 },
  check(m, _text, hit) {
    const password = m[1]!;
    // A literal password only: not ${VAR}, $VAR, <password>, {{ secret }}, %(pw)s or ****.
    if (/^(?:\$|<.*>$|\{\{|%\(|%s$|\*+$|x+$|\.\.\.$)/i.test(password)) return false;
    if (/^(?:password|passwd|pass|pwd|secret|changeme)$/i.test(password)) return false;
    const trimmed = m[0].replace(/[.,;:!?)\]}]+$/, '');
    hit.end = hit.start + trimmed.length;
    return true;
  },
};

const genericSecret: Detector = {
  type: 'GENERIC_SECRET',
  dataClass: 'SECRET',
  priority: 50,
  base: 0.8,
  regex:
    /(?<![A-Za-z0-9])(?:(?:api[_-]?key|apikey|client[_-]?secret|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|refresh[_-]?token|token|passw(?:or)?d|pwd|private[_-]?key)[A-Za-z0-9_]{0,24}["']?\s{0,3}(?::=|=>|[:=])\s{0,3}["']?|bearer\s{1,3})([A-Za-z0-9_\-+/=.~]{12,256})(?![A-Za-z0-9_\-+/=.~])/gi,
  maxLength: 256,
  // A keyword is at most 13 characters, then up to 24 + 1 + 3 before the separator.
  lead: keywordLead({
    keywords: /api|client|secret|access|auth|refresh|token|passw|pwd|private/gi,
    minBefore: 3,
    maxBefore: 13 + 24 + 1 + 3,
    separators: [':', '='],
    bare: /bearer/gi,
  }),
  check(m, _text, hit) {
    const raw = m[1]!;
    let cut = raw.length;
    while (cut > 0 && raw.charCodeAt(cut - 1) === 46) cut--; // trailing dots end a sentence
    const value = cut === raw.length ? raw : raw.slice(0, cut);
    if (value.length < 12 || looksLikePlaceholder(value)) return false;
    // A git commit or a SHA-1 digest, not a secret.
    if (/^[0-9a-f]{40}$/.test(value)) return false;
    if (!/\d/.test(value) || !/[A-Za-z]/.test(value)) return false;
    if (entropy(value) < 3.2) return false;
    hit.start = hit.end - raw.length;
    hit.end = hit.start + value.length;
    return true;
  },
};

export const BUILTIN_DETECTORS: readonly Detector[] = [
  creditCard,
  iban,
  ssnDashed,
  ssnPlain,
  email,
  phone,
  ipv4,
  ipv6,
  nhs,
  dateOfBirth,
  awsAccessKey,
  awsSecretKey,
  githubToken,
  slackToken,
  stripeKey,
  gcpApiKey,
  privateKey,
  jwt,
  connectionString,
  genericSecret,
];

/** The data class of each built-in type. */
export const DATA_CLASS_OF: Readonly<Record<BuiltinType, DataClass>> = Object.fromEntries(
  BUILTIN_DETECTORS.map((d) => [d.type, d.dataClass]),
) as Record<BuiltinType, DataClass>;
