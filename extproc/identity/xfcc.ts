// A strict parser for x-forwarded-client-cert (XFCC), as Envoy's HTTP connection manager writes
// it (docs: "x-forwarded-client-cert"; conn_manager_utility.cc mutateXfccRequestHeader):
//
//   header  = element *("," element)            one element per proxy that added one
//   element = pair *(";" pair)
//   pair    = key "=" value                     keys By Hash Cert Chain Subject URI DNS, any case
//   value   = quoted / bare
//   quoted  = DQUOTE *(char / "\" DQUOTE) DQUOTE  a value holding , ; or = is quoted
//
// Envoy writes one URI= per URI SAN (an empty URI= when the certificate has none), and copies the
// subject between quotes as RFC 2253 gives it, escapes and all. So inside quotes only \" is an
// escape (a literal quote); any other backslash is kept for the subject's own parser. Anything
// else (whitespace around separators, an unknown or repeated single-valued key, an unterminated
// quote, an empty element) is malformed: an identity header either reads one way or is refused.
// One pass, no recursion, no regular expressions: linear in the header, which Envoy bounds.

export const XFCC_HEADER = 'x-forwarded-client-cert';

export interface XfccElement {
  /** By: the URI SAN of the certificate of the proxy that added the element. */
  readonly by: readonly string[];
  readonly hash: string | undefined;
  readonly cert: string | undefined;
  readonly chain: string | undefined;
  readonly subject: string | undefined;
  /** One entry per URI= (Envoy: one per URI SAN; one empty string for a certificate without). */
  readonly uri: readonly string[];
  readonly dns: readonly string[];
}

export type XfccParse = { ok: true; elements: XfccElement[] } | { ok: false; why: string };

type Key = 'by' | 'hash' | 'cert' | 'chain' | 'subject' | 'uri' | 'dns';
const KEYS: Readonly<Record<string, Key>> = {
  by: 'by',
  hash: 'hash',
  cert: 'cert',
  chain: 'chain',
  subject: 'subject',
  uri: 'uri',
  dns: 'dns',
};
const MULTI: ReadonlySet<Key> = new Set(['by', 'uri', 'dns']);

const COMMA = 0x2c;
const SEMI = 0x3b;
const EQ = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

interface Building {
  by: string[];
  hash: string | undefined;
  cert: string | undefined;
  chain: string | undefined;
  subject: string | undefined;
  uri: string[];
  dns: string[];
}

const fresh = (): Building => ({
  by: [],
  hash: undefined,
  cert: undefined,
  chain: undefined,
  subject: undefined,
  uri: [],
  dns: [],
});

export function parseXfcc(header: string): XfccParse {
  const elements: XfccElement[] = [];
  let el = fresh();
  let i = 0;
  const n = header.length;
  if (n === 0) return { ok: false, why: 'empty header' };
  for (;;) {
    // key
    const keyStart = i;
    while (i < n && header.charCodeAt(i) !== EQ) {
      const c = header.charCodeAt(i);
      if (c === COMMA || c === SEMI || c === QUOTE) return { ok: false, why: `pair without "=" at ${keyStart}` };
      i++;
    }
    if (i === n) return { ok: false, why: `pair without "=" at ${keyStart}` };
    const key = KEYS[header.slice(keyStart, i).toLowerCase()];
    if (key === undefined) return { ok: false, why: `unknown key at ${keyStart}` };
    i++; // "="
    // value
    let value: string;
    if (i < n && header.charCodeAt(i) === QUOTE) {
      i++;
      let out = '';
      let from = i;
      for (;;) {
        if (i === n) return { ok: false, why: `unterminated quoted value at ${from - 1}` };
        const c = header.charCodeAt(i);
        if (c === QUOTE) break;
        if (c < 0x20 || c === 0x7f) return { ok: false, why: `control character at ${i}` };
        if (c === BACKSLASH && header.charCodeAt(i + 1) === QUOTE) {
          out += `${header.slice(from, i)}"`;
          i += 2;
          from = i;
          continue;
        }
        i++;
      }
      value = out + header.slice(from, i);
      i++; // closing quote
    } else {
      const from = i;
      while (i < n) {
        const c = header.charCodeAt(i);
        if (c === COMMA || c === SEMI) break;
        if (c === EQ || c === QUOTE || c === BACKSLASH || c <= 0x20 || c === 0x7f)
          return { ok: false, why: `character that needs quoting at ${i}` };
        i++;
      }
      value = header.slice(from, i);
    }
    if (MULTI.has(key)) (el[key] as string[]).push(value);
    else if (el[key] !== undefined) return { ok: false, why: `repeated key at ${keyStart}` };
    else (el as unknown as Record<Key, string>)[key] = value;
    // separator
    if (i === n) {
      elements.push(el);
      return { ok: true, elements };
    }
    const sep = header.charCodeAt(i);
    i++;
    if (sep === COMMA) {
      elements.push(el);
      el = fresh();
    } else if (sep !== SEMI) {
      return { ok: false, why: `expected ";" or "," at ${i - 1}` };
    }
    if (i === n) return { ok: false, why: 'header ends with a separator' };
  }
}
