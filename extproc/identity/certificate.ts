// Every URI SAN of the client certificate Envoy passes in the connection.peer_certificate
// attribute. The connection.uri_san_peer_certificate attribute holds only the first, so without
// this a certificate naming two workloads would pass as the first one.
//
// node:crypto parses the certificate; its subjectAltName is "TYPE:value, TYPE:value", where a
// value holding a separator or a quote is written as a JSON string (Node >= 17.3.1, after
// CVE-2021-44532), so it reads back without ambiguity. About 20 µs per certificate: callers
// cache the outcome per certificate.
import { X509Certificate } from 'node:crypto';

export type UriSans = { ok: true; uris: string[] } | { ok: false; why: string };

/** Envoy 1.40 sends PEM; XFCC's Cert is URL-encoded PEM, accepted too in case a release aligns. */
function pemOf(text: string): string {
  return text.startsWith('-----BEGIN%20') ? decodeURIComponent(text) : text;
}

export function certificateUriSans(certificate: string): UriSans {
  let names: string | undefined;
  try {
    names = new X509Certificate(pemOf(certificate)).subjectAltName;
  } catch {
    return { ok: false, why: 'the peer certificate does not parse' };
  }
  if (names === undefined) return { ok: true, uris: [] };
  return uriSansIn(names);
}

/** The URI entries of Node's subjectAltName text. */
export function uriSansIn(names: string): UriSans {
  const uris: string[] = [];
  let i = 0;
  const n = names.length;
  while (i < n) {
    const colon = names.indexOf(':', i);
    if (colon === -1) return { ok: false, why: 'unreadable subjectAltName' };
    const type = names.slice(i, colon);
    i = colon + 1;
    let value: string;
    if (names[i] === '"') {
      let j = i + 1;
      while (j < n && names[j] !== '"') j += names[j] === '\\' ? 2 : 1;
      if (j >= n) return { ok: false, why: 'unreadable subjectAltName' };
      try {
        value = JSON.parse(names.slice(i, j + 1)) as string;
      } catch {
        return { ok: false, why: 'unreadable subjectAltName' };
      }
      i = j + 1;
    } else {
      const sep = names.indexOf(', ', i);
      const end = sep === -1 ? n : sep;
      value = names.slice(i, end);
      i = end;
    }
    if (type === 'URI') uris.push(value);
    if (i === n) break;
    if (!names.startsWith(', ', i)) return { ok: false, why: 'unreadable subjectAltName' };
    i += 2;
  }
  return { ok: true, uris };
}
