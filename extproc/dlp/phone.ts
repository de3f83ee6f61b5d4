// Phone number validity as libphonenumber-js decides it (`parsePhoneNumberFromString(s,
// region)?.isValid()`, max metadata), for the strings the PHONE detector matches: digits,
// single separators (space, dot, dash), parentheses and one leading `+`.
//
// Why a second implementation: libphonenumber-js builds `new RegExp('^(?:' + pattern + ')$')`
// for every pattern it tests (helpers/matchesEntirely.js), a few to dozens per number, from
// metadata patterns up to ~1,500 characters; that was most of its ~10-20 µs per number and a
// sixth of a scan of digit-dense text. This follows the same steps (parse.js: IDD prefix,
// country calling code, national prefix, the country among those sharing a calling code;
// isValid.js and getNumberType.js: the types) on the library's own Metadata, with each pattern
// compiled once. phone.test.ts holds it to the library's answer over generated numbers of every
// calling code and shape; anything outside the shape above goes to the library itself.
//
// The library and its metadata (~2 MiB of heap) are loaded on the first number checked, not when
// the gate starts: a gate whose config scans nothing never holds them. The DLP stages scan a
// warm-up text when the config is loaded (dlp/gate/engine.ts), so that first check happens there,
// never on a request. Synchronous (require of the CommonJS build) because scans are.
import type * as Core from 'libphonenumber-js/core';

/** What this module reads of libphonenumber-js's Metadata (metadata.js): its typings list
 * only the constructor. */
interface Plan {
  callingCode(): string;
  IDDPrefix(): string;
  nationalNumberPattern(): string;
  possibleLengths(): number[] | undefined;
  nationalPrefix(): string | undefined;
  nationalPrefixForParsing(): string | undefined;
  nationalPrefixTransformRule(): string | undefined;
  leadingDigits(): string | undefined;
  hasTypes(): boolean;
  type(type: string): { pattern(): string; possibleLengths(): number[] | undefined } | undefined;
}
interface Meta {
  numberingPlan: Plan | undefined;
  hasCountry(country: string): boolean;
  hasCallingCode(code: string): boolean;
  getCountryCodesForCallingCode(code: string): string[] | undefined;
  selectNumberingPlan(countryOrCallingCode: string): Meta;
}

interface Library {
  core: typeof Core;
  json: Core.MetadataJson;
  /** One Metadata for the lookups that need no numbering plan selected. */
  shared: Meta;
}
let library: Library | undefined;
function lib(): Library {
  if (library === undefined) {
    const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);
    const core = require('libphonenumber-js/core') as typeof Core;
    const json = require('libphonenumber-js/metadata.max.json') as Core.MetadataJson;
    library = { core, json, shared: new core.Metadata(json) as unknown as Meta };
  }
  return library;
}
/** Numbering plans by country or calling code, each made once (the library makes a Metadata
 * and a plan object per step): bounded by the metadata's few hundred countries and codes. */
const plans = new Map<string, Plan>();
function planOf(countryOrCallingCode: string): Plan {
  let plan = plans.get(countryOrCallingCode);
  if (plan === undefined) {
    const { core, json } = lib();
    const meta = new core.Metadata(json) as unknown as Meta;
    plan = meta.selectNumberingPlan(countryOrCallingCode).numberingPlan!;
    plans.set(countryOrCallingCode, plan);
  }
  return plan;
}

const MAX_LENGTH_COUNTRY_CODE = 3;
const MIN_LENGTH_FOR_NSN = 2;
const MAX_LENGTH_FOR_NSN = 17;
const NON_FIXED_LINE_TYPES = [
  'MOBILE',
  'PREMIUM_RATE',
  'TOLL_FREE',
  'SHARED_COST',
  'VOIP',
  'PERSONAL_NUMBER',
  'PAGER',
  'UAN',
  'VOICEMAIL',
];

/** Each metadata pattern compiled once (the library compiles it per test). Patterns come from
 * the metadata, a fixed set of a few thousand strings: the caches are bounded by it. */
const whole = new Map<string, RegExp>();
const prefix = new Map<string, RegExp>();
const anywhere = new Map<string, RegExp>();
function cached(map: Map<string, RegExp>, key: string, source: string): RegExp {
  let re = map.get(key);
  if (re === undefined) {
    re = new RegExp(source);
    map.set(key, re);
  }
  return re;
}
/** helpers/matchesEntirely.js */
const matchesEntirely = (text: string, pattern: string): boolean =>
  cached(whole, pattern, `^(?:${pattern})$`).test(text);

/** The candidate shape this module answers for; anything else goes to libphonenumber. */
const SHAPE = /^[+(]?[0-9][0-9 ().-]*$/;

/** Whether libphonenumber-js (max metadata) calls `candidate` a valid number, read with
 * `region` as the default country. */
export function phoneValid(candidate: string, region: string): boolean {
  if (!SHAPE.test(candidate) || candidate.length > 250) {
    const { core, json } = lib();
    const parsed = core.parsePhoneNumberFromString(candidate, region as never, json);
    return parsed?.isValid() === true;
  }
  // parsePhoneNumber_.js: an unknown default country is ignored.
  const defaultCountry = lib().shared.hasCountry(region) ? region : undefined;
  // parse.js extracts from the first + or digit (a leading parenthesis goes); the candidate
  // ends in a digit, so nothing is cut at its end. No extension can be written with these
  // characters. parseIncompletePhoneNumber keeps a leading + and the digits.
  let number = candidate.charCodeAt(0) === 43 ? '+' : '';
  for (let k = 0; k < candidate.length; k++) {
    const c = candidate.charCodeAt(k);
    if (c >= 48 && c <= 57) number += candidate[k];
  }
  // parse.js parsePhoneNumber()
  const extracted = extractCountryCallingCode(number, defaultCountry);
  let callingCode = extracted.callingCode;
  let country: string | undefined;
  const rest = extracted.number;
  let selected: Plan;
  if (callingCode !== undefined) selected = planOf(callingCode);
  else if (rest !== undefined && rest !== '' && defaultCountry !== undefined) {
    country = defaultCountry;
    selected = planOf(defaultCountry);
    callingCode = selected.callingCode();
  } else return false;
  if (rest === undefined || rest === '') return false;
  const nationalNumber = extractNationalNumber(rest, selected);
  const exact = countryByCallingCode(callingCode, nationalNumber);
  if (exact !== undefined) country = exact;
  if (nationalNumber.length < MIN_LENGTH_FOR_NSN || nationalNumber.length > MAX_LENGTH_FOR_NSN) return false;
  // isValid.js
  const plan = planOf(country ?? callingCode);
  if (plan.hasTypes()) return numberType(nationalNumber, plan);
  return matchesEntirely(nationalNumber, plan.nationalNumberPattern());
}

/** helpers/extractCountryCallingCode.js, for a number of digits with an optional leading +. */
function extractCountryCallingCode(
  input: string,
  defaultCountry: string | undefined,
): { callingCode?: string; number?: string } {
  let number = input;
  if (number === '') return {};
  if (number[0] !== '+') {
    const withoutIdd = stripIddPrefix(number, defaultCountry);
    if (withoutIdd && withoutIdd !== number) number = `+${withoutIdd}`;
    else {
      if (defaultCountry !== undefined) {
        const found = callingCodeWithoutPlus(number, defaultCountry);
        if (found !== undefined) return found;
      }
      return { number };
    }
  }
  if (number[1] === '0') return {};
  for (let i = 2; i - 1 <= MAX_LENGTH_COUNTRY_CODE && i <= number.length; i++) {
    const code = number.slice(1, i);
    if (lib().shared.hasCallingCode(code)) return { callingCode: code, number: number.slice(i) };
  }
  return {};
}

/** helpers/stripIddPrefix.js */
function stripIddPrefix(number: string, country: string | undefined): string | undefined {
  if (country === undefined) return undefined;
  const idd = planOf(country).IDDPrefix();
  const m = cached(anywhere, idd, idd).exec(number);
  if (m === null || m.index !== 0) return undefined;
  const rest = number.slice(m[0].length);
  if (rest[0] === '0') return undefined;
  return rest;
}

/** helpers/extractCountryCallingCodeFromInternationalNumberWithoutPlusSign.js */
function callingCodeWithoutPlus(number: string, country: string): { callingCode: string; number: string } | undefined {
  const plan = planOf(country);
  const callingCode = plan.callingCode();
  if (!number.startsWith(callingCode)) return undefined;
  const shorter = number.slice(callingCode.length);
  const shorterNational = extractNationalNumber(shorter, plan);
  const national = extractNationalNumber(number, plan);
  const pattern = plan.nationalNumberPattern();
  if (
    (!matchesEntirely(national, pattern) && matchesEntirely(shorterNational, pattern)) ||
    checkNumberLength(national, plan) === 'TOO_LONG'
  )
    return { callingCode, number: shorter };
  return undefined;
}

/** helpers/extractNationalNumber.js (country not given), in the selected `plan`. */
function extractNationalNumber(number: string, plan: Plan): string {
  const national = withoutNationalPrefix(number, plan);
  if (national === number) return number;
  // shouldHaveExtractedNationalPrefix
  const pattern = plan.nationalNumberPattern();
  if (matchesEntirely(number, pattern) && !matchesEntirely(national, pattern)) return number;
  if (plan.possibleLengths()) {
    const country = countryByCallingCode(plan.callingCode(), national);
    const lengthPlan = country === undefined ? plan : planOf(country);
    const length = checkNumberLength(national, lengthPlan);
    if (length === 'TOO_SHORT' || length === 'INVALID_LENGTH') return number;
  }
  return national;
}

/** helpers/extractNationalNumberFromPossiblyIncompleteNumber.js: the national number only. */
function withoutNationalPrefix(number: string, plan: Plan): string {
  const forParsing = plan.nationalPrefixForParsing();
  if (!number || !forParsing) return number;
  const re = cached(prefix, forParsing, `^(?:${forParsing})`);
  const m = re.exec(number);
  if (m === null) return number;
  const groups = m.length - 1;
  const hasGroups = groups > 0 && m[groups];
  const transform = plan.nationalPrefixTransformRule();
  if (transform && hasGroups) return number.replace(re, transform);
  return number.slice(m[0].length);
}

/** helpers/checkNumberLength.js (no type, no country: the selected plan). */
function checkNumberLength(national: string, plan: Plan): string {
  const lengths = plan.possibleLengths();
  if (!lengths) return 'IS_POSSIBLE';
  const n = national.length;
  if (lengths[0] === n) return 'IS_POSSIBLE';
  if (lengths[0]! > n) return 'TOO_SHORT';
  if (lengths[lengths.length - 1]! < n) return 'TOO_LONG';
  return lengths.indexOf(n, 1) >= 0 ? 'IS_POSSIBLE' : 'INVALID_LENGTH';
}

/** helpers/getCountryByCallingCode.js and getCountryByNationalNumber.js */
function countryByCallingCode(callingCode: string, national: string): string | undefined {
  const countries = lib().shared.getCountryCodesForCallingCode(callingCode);
  if (!countries) return undefined;
  if (countries.length === 1) return countries[0];
  for (const country of countries) {
    const plan = planOf(country);
    const leading = plan.leadingDigits();
    if (leading) {
      if (national) {
        const m = cached(anywhere, leading, leading).exec(national);
        if (m !== null && m.index === 0) return country;
      }
    } else if (numberType(national, plan)) return country;
  }
  return undefined;
}

/** helpers/getNumberType.js: whether the national number is of any type in the plan. */
function numberType(national: string, plan: Plan): boolean {
  if (!matchesEntirely(national, plan.nationalNumberPattern())) return false;
  if (isType(national, 'FIXED_LINE', plan)) return true;
  for (const type of NON_FIXED_LINE_TYPES) if (isType(national, type, plan)) return true;
  return false;
}

/** helpers/getNumberType.js isNumberTypeEqualTo */
function isType(national: string, type: string, plan: Plan): boolean {
  const def = plan.type(type);
  if (!def?.pattern()) return false;
  const lengths = def.possibleLengths();
  if (lengths && lengths.indexOf(national.length) < 0) return false;
  return matchesEntirely(national, def.pattern());
}
