// phoneValid must answer exactly as libphonenumber-js does (parsePhoneNumberFromString(s,
// region)?.isValid(), max metadata), for every shape the PHONE detector matches: checked here
// over numbers built for every calling code (each country's example number and variations of
// it, random digits), written international, national, with an IDD prefix, with the calling
// code but no plus, grouped with spaces, dots, dashes and parentheses, read with default
// regions that share calling codes, have national prefixes and transform rules, or none.
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/mobile/examples';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/dlp/corpus.ts';
import { phoneValid } from './phone.ts';

const reference = (s: string, region: string) =>
  parsePhoneNumberFromString(s, region as Parameters<typeof parsePhoneNumberFromString>[1])?.isValid() === true;

const REGIONS = ['US', 'CA', 'GB', 'DE', 'FR', 'IN', 'BR', 'AU', 'RU', 'KZ', 'IT', 'AR', 'MX', 'CN', 'JP', 'NL', 'ZZ'];
/** International call prefixes of some of those regions (US 011, GB 00, AU 0011, JP 010, RU 810). */
const IDD_PREFIXES = ['011', '00', '0011', '010', '810'];

function variants(r: () => number): (callingCode: string, national: string) => string[] {
  const digit = () => String(Math.floor(r() * 10));
  const group = (d: string, sep: string) => {
    const parts: string[] = [];
    for (let i = 0; i < d.length; ) {
      const n = 2 + Math.floor(r() * 3);
      parts.push(d.slice(i, i + n));
      i += n;
    }
    return parts.join(sep);
  };
  return (cc, national) => {
    const changed = national.slice(0, -2) + digit() + digit();
    const shorter = national.slice(0, -1);
    const longer = national + digit();
    const out: string[] = [];
    for (const n of [national, changed, shorter, longer]) {
      const sep = [' ', '-', '.', ''][Math.floor(r() * 4)]!;
      out.push(`+${cc} ${group(n, sep)}`, `+${cc}${n}`, `${cc}${n}`, `0${n}`, n, group(n, sep));
      if (n.length >= 7)
        out.push(`(${n.slice(0, 3)}) ${n.slice(3, 6)}-${n.slice(6)}`, `+${cc} (${n.slice(0, 2)}) ${n.slice(2)}`);
      const idd = IDD_PREFIXES[Math.floor(r() * IDD_PREFIXES.length)]!;
      out.push(`${idd} ${cc} ${n}`, `${idd}${cc}${n}`);
    }
    return out;
  };
}

describe('phoneValid', () => {
  it('answers as libphonenumber-js for every calling code, shape and default region', () => {
    const r = rng(42);
    const make = variants(r);
    const candidates: string[] = [];
    const ex = examples as Record<string, string>;
    const codes = new Map<string, string[]>();
    for (const [country, national] of Object.entries(ex)) {
      const parsed = parsePhoneNumberFromString(national, country as never);
      if (parsed === undefined) continue;
      candidates.push(...make(parsed.countryCallingCode, parsed.nationalNumber));
      codes.set(parsed.countryCallingCode, [...(codes.get(parsed.countryCallingCode) ?? []), country]);
    }
    // Random digits for each calling code, and for the non-geographic ones.
    for (const cc of [...codes.keys(), '800', '808', '870', '878', '881', '882', '883', '888', '979']) {
      for (let k = 0; k < 4; k++) {
        let n = String(1 + Math.floor(r() * 9));
        const len = 4 + Math.floor(r() * 10);
        while (n.length < len) n += String(Math.floor(r() * 10));
        candidates.push(...make(cc, n));
      }
    }
    // The corpus's own shapes and near-misses.
    candidates.push('(212) 555-1234', '212-734-5678', '303.123.45.678', '+44 20 7946 0958', '1 800 555 0199', '+1');
    expect(candidates.length).toBeGreaterThan(20_000);
    let valid = 0;
    let compared = 0;
    const wrong: string[] = [];
    // Three default regions per number (a full cross product takes half a minute).
    for (const s of candidates)
      for (let k = 0; k < 3; k++) {
        const region = REGIONS[Math.floor(r() * REGIONS.length)]!;
        compared++;
        const want = reference(s, region);
        if (want) valid++;
        if (phoneValid(s, region) !== want) wrong.push(`${region} ${s}: want ${want}`);
      }
    expect(wrong.slice(0, 20)).toEqual([]);
    // Enough of both answers for the comparison to mean something.
    expect(valid).toBeGreaterThan(compared / 20);
    expect(compared - valid).toBeGreaterThan(compared / 2);
    // ~3 s alone; the reference library is the slow side.
  }, 30_000);

  it('leaves shapes the detector never matches to the library', () => {
    for (const s of ['(+44) 20 7946 0958', '+44 20 7946 0958 ext. 12', 'tel:+442079460958', '02079460958#'])
      for (const region of ['GB', 'US']) expect(phoneValid(s, region)).toBe(reference(s, region));
  });
});
