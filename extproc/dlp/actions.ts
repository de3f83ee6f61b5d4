// The text transforms behind the DLP actions, pure functions of text and findings: redact
// (`[REDACTED:EMAIL]`), mask (keep a suffix), pseudonymise (`[EMAIL_1]`, restored in the
// response). block and warn change no text: the stage refuses or only audits.
//
// Placeholders are unambiguous: the closing bracket makes `[EMAIL_1]` no prefix of
// `[EMAIL_10]`. The map is per request. A placeholder the user typed is reserved before numbers
// are handed out, so it never names a value and restore() leaves it as typed.
import type { Finding } from './types.ts';

const PLACEHOLDER = /\[([A-Z][A-Z0-9_]{0,63})_([1-9]\d{0,8})\]/g;
/** The longest placeholder: `[` + 64-char type + `_` + 9 digits + `]`. */
const MAX_PLACEHOLDER = 1 + 64 + 1 + 9 + 1;

export class PseudonymMap {
  private readonly byPlaceholder = new Map<string, string>();
  private readonly byValue = new Map<string, string>();
  private readonly next = new Map<string, number>();
  private readonly reserved = new Set<string>();

  /** Marks the placeholders written in `text` as taken: no value will get them. Call it on
   * every text of a request before pseudonymising any of them. */
  reserve(text: string): void {
    if (!text.includes('[')) return;
    for (const m of text.matchAll(PLACEHOLDER)) if (!this.byPlaceholder.has(m[0])) this.reserved.add(m[0]);
  }

  /** The placeholder for `value` of `type`: the same one every time in this request. */
  placeholderFor(type: string, value: string): string {
    const key = `${type}\u0000${value}`;
    const known = this.byValue.get(key);
    if (known !== undefined) return known;
    let n = this.next.get(type) ?? 1;
    let placeholder = `[${type}_${n}]`;
    while (this.reserved.has(placeholder)) placeholder = `[${type}_${++n}]`;
    this.next.set(type, n + 1);
    this.byValue.set(key, placeholder);
    this.byPlaceholder.set(placeholder, value);
    return placeholder;
  }

  valueOf(placeholder: string): string | undefined {
    return this.byPlaceholder.get(placeholder);
  }

  get size(): number {
    return this.byPlaceholder.size;
  }
}

export interface Applied {
  text: string;
  /** The pseudonym placeholders this text now contains, in order. */
  placeholders: string[];
}

/** Mask: every letter and digit but the last `keep` becomes `*` (at most half of them stay
 * visible), separators stay, so `4111 1111 1111 1111` reads `**** **** **** 1111`. */
export function mask(value: string, keep: number): string {
  let alnum = 0;
  for (const ch of value) if (/[\p{L}\p{N}]/u.test(ch)) alnum++;
  const visible = Math.min(keep, Math.floor(alnum / 2));
  let seen = 0;
  let out = '';
  for (const ch of value) {
    if (/[\p{L}\p{N}]/u.test(ch)) {
      seen++;
      out += seen > alnum - visible ? ch : '*';
    } else out += ch;
  }
  return out;
}

/** `text` with each finding's action applied. Findings are sorted and do not overlap (as a
 * Scanner returns them); offsets are UTF-16 units into `text`. */
export function applyActions(text: string, findings: readonly Finding[], map: PseudonymMap, maskKeep = 4): Applied {
  map.reserve(text);
  const placeholders: string[] = [];
  let out = '';
  let at = 0;
  for (const f of findings) {
    if (f.action === 'block' || f.action === 'warn') continue;
    const value = text.slice(f.start, f.end);
    let replacement: string;
    if (f.action === 'redact') replacement = `[REDACTED:${f.type}]`;
    else if (f.action === 'mask') replacement = mask(value, maskKeep);
    else {
      replacement = map.placeholderFor(f.type, value);
      placeholders.push(replacement);
    }
    out += text.slice(at, f.start) + replacement;
    at = f.end;
  }
  if (at === 0) return { text, placeholders };
  return { text: out + text.slice(at), placeholders };
}

/** `text` with this request's placeholders replaced by their values; any other bracketed
 * text, including placeholders the user typed, stays as it is. */
export function restore(text: string, map: PseudonymMap): string {
  if (map.size === 0 || !text.includes('[')) return text;
  return text.replace(PLACEHOLDER, (p) => map.valueOf(p) ?? p);
}

/** How many trailing characters of `text` could be the start of a placeholder still arriving:
 * a stream restoring placeholders holds them until the next piece. */
export function placeholderTail(text: string): number {
  const open = text.lastIndexOf('[');
  if (open < 0 || text.length - open > MAX_PLACEHOLDER) return 0;
  return /^\[(?:[A-Z][A-Z0-9_]*)?$/.test(text.slice(open)) ? text.length - open : 0;
}
