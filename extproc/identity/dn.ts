// Certificate subjects as Envoy prints them: RFC 2253 / 4514 distinguished names, most specific
// first ("CN=billing,O=Acme"), special characters escaped with a backslash ("CN=a\, b") and
// non-ASCII bytes as hex pairs ("CN=Jos\C3\A9"). The connection.subject_peer_certificate
// attribute and XFCC's Subject carry the same text, except that XFCC turns \" into " (xfcc.ts),
// so a bare quote inside a value is read as a quote. Hex-encoded BER values (#04...) are not read.

export interface DnAttribute {
  /** Upper case: attribute types compare case-insensitively (CN, O, OU, 2.5.4.3). */
  readonly type: string;
  readonly value: string;
  /** Index of its RDN; attributes joined with + share one. */
  readonly rdn: number;
}

export type DnParse = { ok: true; attributes: DnAttribute[] } | { ok: false; why: string };

const TYPE = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$/;
const ESCAPABLE = new Set([' ', '"', '#', '+', ',', ';', '<', '=', '>', '\\']);
const HEX = /^[0-9A-Fa-f]{2}$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function parseDn(dn: string): DnParse {
  const attributes: DnAttribute[] = [];
  if (dn === '') return { ok: true, attributes };
  let i = 0;
  let rdn = 0;
  const n = dn.length;
  for (;;) {
    const eq = dn.indexOf('=', i);
    if (eq === -1) return { ok: false, why: `attribute without "=" at ${i}` };
    const type = dn.slice(i, eq);
    if (!TYPE.test(type)) return { ok: false, why: `invalid attribute type at ${i}` };
    i = eq + 1;
    if (dn.charCodeAt(i) === 0x23 /* # */) return { ok: false, why: 'hex-encoded values are not read' };
    let value = '';
    let bytes: number[] | undefined;
    const flush = (): boolean => {
      if (bytes === undefined) return true;
      try {
        value += UTF8.decode(Uint8Array.from(bytes));
      } catch {
        return false;
      }
      bytes = undefined;
      return true;
    };
    let end = -1;
    while (i < n) {
      const c = dn[i]!;
      if (c === ',' || c === '+') {
        end = i;
        break;
      }
      if (c === '\\') {
        const next = dn[i + 1];
        if (next !== undefined && ESCAPABLE.has(next)) {
          if (!flush()) return { ok: false, why: 'invalid UTF-8' };
          value += next;
          i += 2;
          continue;
        }
        const pair = dn.slice(i + 1, i + 3);
        if (!HEX.test(pair)) return { ok: false, why: `invalid escape at ${i}` };
        bytes ??= [];
        bytes.push(Number.parseInt(pair, 16));
        i += 3;
        continue;
      }
      if (!flush()) return { ok: false, why: 'invalid UTF-8' };
      value += c;
      i++;
    }
    if (!flush()) return { ok: false, why: 'invalid UTF-8' };
    attributes.push({ type: type.toUpperCase(), value, rdn });
    if (end === -1) return { ok: true, attributes };
    if (dn[end] === ',') rdn++;
    i = end + 1;
    if (i === n) return { ok: false, why: 'ends with a separator' };
  }
}

/** One canonical spelling (RFC 4514 escapes), so a subject read from the attribute and the same
 * subject read from XFCC give the same principal id. */
export function formatDn(attributes: readonly DnAttribute[]): string {
  let out = '';
  for (let k = 0; k < attributes.length; k++) {
    const a = attributes[k]!;
    if (k > 0) out += a.rdn === attributes[k - 1]!.rdn ? '+' : ',';
    out += `${a.type}=${escapeValue(a.value)}`;
  }
  return out;
}

function escapeValue(v: string): string {
  let out = v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}
