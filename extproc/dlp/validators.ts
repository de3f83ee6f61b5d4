// Checksums and format rules behind the validator-backed detectors. Each takes the matched
// text (already known to have the detector's shape) and says whether it is the real thing.
import { crc32 } from 'node:zlib';

/** Luhn over the digits of `s` (other characters ignored). */
export function luhn(s: string): boolean {
  let sum = 0;
  let double = false;
  let digits = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    digits++;
    let d = c;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits > 0 && sum % 10 === 0;
}

/** The issuer of the card number whose digits are those of `s` (separators skipped, so a grouped
 * number needs no compact copy made first), when its prefix is a real one for its length. */
export function cardIssuer(s: string): string | undefined {
  let n = 0;
  let p6 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    if (n < 6) p6 = p6 * 10 + c;
    n++;
  }
  return n < 13 ? undefined : issuerOf(p6, n);
}

/** The issuer of a card of `n` digits (n >= 13) whose leading six digits are p6. */
function issuerOf(p6: number, n: number): string | undefined {
  const p2 = Math.floor(p6 / 10000);
  const p3 = Math.floor(p6 / 1000);
  const p4 = Math.floor(p6 / 100);
  if (p6 >= 400000 && p6 <= 499999 && (n === 13 || n === 16 || n === 19)) return 'visa';
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n === 16) return 'mastercard';
  if ((p2 === 34 || p2 === 37) && n === 15) return 'amex';
  if ((p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65 || (p6 >= 622126 && p6 <= 622925)) && n >= 16 && n <= 19)
    return 'discover';
  if (p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19) return 'jcb';
  if (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39 || p4 === 3095) && n >= 14 && n <= 19)
    return 'diners';
  if (p2 === 62 && n >= 16 && n <= 19) return 'unionpay';
  return undefined;
}

/** IBAN length per country (SWIFT IBAN registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MN: 20,
  MR: 27,
  MT: 31,
  MU: 30,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
  YE: 30,
};

/** mod-97 of an IBAN (no spaces, upper case): letters count as 10..35, country and check digits last. */
export function ibanValid(iban: string): boolean {
  const len = IBAN_LENGTHS[iban.slice(0, 2)];
  if (len === undefined || iban.length !== len) return false;
  let rem = 0;
  for (let k = 0; k < iban.length; k++) {
    const c = iban.charCodeAt((k + 4) % iban.length);
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

/** US SSN area/group/serial rules (digits only, 9 of them). */
export function ssnValid(d: string): boolean {
  const area = Number(d.slice(0, 3));
  const group = Number(d.slice(3, 5));
  const serial = Number(d.slice(5));
  if (area === 0 || area === 666 || area >= 900 || group === 0 || serial === 0) return false;
  // Numbers the SSA voided after they were published (a wallet insert, an advert).
  if (d === '078051120' || d === '219099999') return false;
  return true;
}

/** NHS number mod-11 (10 digits). */
export function nhsValid(d: string): boolean {
  let sum = 0;
  for (let k = 0; k < 9; k++) sum += (d.charCodeAt(k) - 48) * (10 - k);
  const check = 11 - (sum % 11);
  if (check === 10) return false;
  return (check === 11 ? 0 : check) === d.charCodeAt(9) - 48;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function base62(n: number, width: number): string {
  let s = '';
  let v = n;
  do {
    s = BASE62[v % 62] + s;
    v = Math.floor(v / 62);
  } while (v > 0);
  return s.padStart(width, '0');
}

/** A classic GitHub token (`ghp_` + 30 random + 6 checksum): the checksum is the CRC32 of the
 * random part in base62. Placeholders (`ghp_xxxx…`) fail it. */
export function githubChecksumValid(token: string): boolean {
  const body = token.slice(4);
  if (body.length !== 36) return false;
  return base62(crc32(body.slice(0, 30)), 6) === body.slice(30);
}

/** A JWT's first part decodes to a JSON object naming its `alg`. */
export function jwtHeaderValid(header: string): boolean {
  if (header.length > 4096) return false;
  try {
    const json: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return typeof json === 'object' && json !== null && typeof (json as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Uint16Array(128);
  let other = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 128) counts[c]!++;
    else other++;
  }
  let h = 0;
  const add = (n: number) => {
    const p = n / s.length;
    h -= p * Math.log2(p);
  };
  for (let c = 0; c < 128; c++) if (counts[c]! > 0) add(counts[c]!);
  // Values here are ASCII; anything else counts as one more symbol.
  if (other > 0) add(other);
  return h;
}

/** A value a document or template stands in for a secret, not a secret. */
const PLACEHOLDER =
  /example|sample|dummy|your|changeme|placeholder|redacted|xxxx|\*\*\*|<|>|\$\{|\{\{|%\(|^\$[A-Za-z_]|^(.)\1+$/i;
export function looksLikePlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value);
}
