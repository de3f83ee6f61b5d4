// From a client certificate's identity (its URI SANs and subject, however Envoy passed them) to a
// principal, by the identity.mtls rules, compiled once per config snapshot. Fails closed: an
// empty or ambiguous identity, a URI that is not a SPIFFE ID, a trust domain no rule names, a
// path or subject no rule matches, all refuse with 401 rather than fall through to some default.
import type { Principal } from '../pipeline/context.ts';
import { type GateError, refuse } from '../pipeline/errors.ts';
import { type DnAttribute, formatDn, parseDn } from './dn.ts';
import type { MtlsConfig } from './mtls-config.ts';
import { PLACEHOLDER } from './mtls-placeholder.ts';
import { parseSpiffeId } from './spiffe.ts';

/** What a certificate says about its holder, from either source. */
export interface CertificateIdentity {
  /** Every URI SAN, in certificate order; empty when it has none. */
  readonly uris: readonly string[];
  /** RFC 2253 subject, when the source carries it. */
  readonly subject: string | undefined;
}

type Captures = Record<string, string>;
type Template = (c: Captures) => string;

interface Mapping {
  tenant: Template;
  team: Template | undefined;
  user: Template | undefined;
  roles: Template[];
}

interface CompiledSpiffeRule extends Mapping {
  /** A literal segment, or the name a segment is captured as. */
  segments: ({ literal: string } | { capture: string })[];
}

interface CompiledSubjectRule extends Mapping {
  issuer: string;
  match: { type: string; literal?: string; capture?: string }[];
}

const PRINTABLE = /^[\x20-\x7e]+$/;

export const notMapped = (why: string): GateError =>
  refuse('invalid_client_certificate', `The client certificate does not identify a caller: ${why}.`);

export function compileMtlsMapping(cfg: MtlsConfig): (identity: CertificateIdentity) => Principal {
  const byTrustDomain = new Map<string, CompiledSpiffeRule[]>();
  for (const r of cfg.spiffe) {
    const rules = byTrustDomain.get(r.trustDomain) ?? [];
    rules.push({
      ...compileMapping(r),
      segments: r.path
        .slice(1)
        .split('/')
        .map((s) => (s.startsWith('{') ? { capture: s.slice(1, -1) } : { literal: s })),
    });
    byTrustDomain.set(r.trustDomain, rules);
  }
  const subjectRules: CompiledSubjectRule[] = cfg.subjects.map((r) => ({
    ...compileMapping(r),
    issuer: r.issuer,
    match: Object.entries(r.match).map(([type, v]) =>
      /^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(v)
        ? { type: type.toUpperCase(), capture: v.slice(1, -1) }
        : { type: type.toUpperCase(), literal: v },
    ),
  }));

  return (identity) => {
    if (identity.uris.length > 1) throw notMapped('it has several URI SANs, so which workload it names is ambiguous');
    const uri = identity.uris[0];
    if (uri !== undefined) return bySpiffeId(uri, byTrustDomain);
    if (subjectRules.length > 0 && identity.subject !== undefined) return bySubject(identity.subject, subjectRules);
    throw notMapped('it has no URI SAN (SPIFFE ID)');
  };
}

function bySpiffeId(uri: string, byTrustDomain: ReadonlyMap<string, CompiledSpiffeRule[]>): Principal {
  const parsed = parseSpiffeId(uri);
  if (!parsed.ok) throw notMapped(`its URI SAN is not a valid SPIFFE ID (${parsed.why})`);
  const { id, trustDomain, segments } = parsed.value;
  const rules = byTrustDomain.get(trustDomain);
  if (rules === undefined) throw notMapped('its trust domain is not configured');
  for (const rule of rules) {
    if (rule.segments.length !== segments.length) continue;
    const captures: Captures = {};
    let matched = true;
    for (let k = 0; k < segments.length && matched; k++) {
      const want = rule.segments[k]!;
      if ('literal' in want) matched = want.literal === segments[k];
      else captures[want.capture] = segments[k]!;
    }
    if (matched) return principal(rule, captures, id, trustDomain);
  }
  throw notMapped('its SPIFFE ID matches no configured path');
}

function bySubject(subject: string, rules: readonly CompiledSubjectRule[]): Principal {
  const dn = parseDn(subject);
  if (!dn.ok) throw notMapped(`its subject does not parse (${dn.why})`);
  const id = formatDn(dn.attributes);
  if (!PRINTABLE.test(id)) throw notMapped('its subject is not printable ASCII');
  for (const rule of rules) {
    const captures = matchSubject(rule, dn.attributes);
    if (captures !== undefined) return principal(rule, captures, id, rule.issuer);
  }
  throw notMapped('its subject matches no configured rule');
}

/** The rule's captures, or undefined when it does not match. An attribute the rule names that
 * the subject repeats (two OU) is ambiguous: refused, whichever would match. */
function matchSubject(rule: CompiledSubjectRule, attributes: readonly DnAttribute[]): Captures | undefined {
  const captures: Captures = {};
  let matched = true;
  for (const want of rule.match) {
    let value: string | undefined;
    for (const a of attributes) {
      if (a.type !== want.type) continue;
      if (value !== undefined) throw notMapped(`its subject has ${want.type} more than once`);
      value = a.value;
    }
    if (value === undefined) matched = false;
    else if (want.literal !== undefined) matched &&= value === want.literal;
    else captures[want.capture!] = value;
  }
  return matched ? captures : undefined;
}

function principal(rule: Mapping, captures: Captures, id: string, issuer: string): Principal {
  const tenant = rule.tenant(captures);
  // A captured subject value may be empty or hold what a header cannot: refuse it rather than
  // send a principal upstream that differs from the one audited.
  const fields = [tenant, rule.team?.(captures), rule.user?.(captures)];
  const roles = rule.roles.map((r) => r(captures));
  for (const v of [...fields, ...roles]) {
    if (v !== undefined && !PRINTABLE.test(v)) throw notMapped('a value it maps to is empty or not printable ASCII');
  }
  return {
    id,
    tenant,
    team: fields[1],
    user: fields[2],
    roles,
    attributes: captures,
    method: 'mtls',
    issuer,
    scope: undefined,
  };
}

function compileMapping(r: MtlsConfig['spiffe'][number] | MtlsConfig['subjects'][number]): Mapping {
  return {
    tenant: compileTemplate(r.tenant),
    team: r.team === undefined ? undefined : compileTemplate(r.team),
    user: r.user === undefined ? undefined : compileTemplate(r.user),
    roles: r.roles.map(compileTemplate),
  };
}

/** "{ns}-reader" → captures => captures.ns + "-reader"; a constant returns itself. */
function compileTemplate(t: string): Template {
  const parts: { text: string; name?: string }[] = [];
  let last = 0;
  for (const m of t.matchAll(PLACEHOLDER)) {
    if (m.index > last) parts.push({ text: t.slice(last, m.index) });
    parts.push({ text: '', name: m[1]! });
    last = m.index + m[0].length;
  }
  if (last < t.length) parts.push({ text: t.slice(last) });
  if (parts.every((p) => p.name === undefined)) return () => t;
  return (c) => {
    let out = '';
    for (const p of parts) out += p.name === undefined ? p.text : (c[p.name] ?? '');
    return out;
  };
}
