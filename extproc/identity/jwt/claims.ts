// A verified token's claims as the method-neutral principal. The mapping (preset, then the
// issuer's own claims over it) is compiled once per config snapshot into path lists; mapping a
// token walks them and builds one object, with no closure per request.
import type { Principal } from '../../pipeline/context.ts';
import { type ClaimPath, parseClaimPath, readClaim } from './claim-path.ts';
import type { JwtIssuerConfig } from './config.ts';
import { type ClaimSources, presetClaims } from './presets.ts';

/** Ids and tenants travel upstream as header values and into audit records. */
const MAX_ID_LENGTH = 256;
const MAX_ROLES = 256;
const MAX_TEXT_LENGTH = 1024;

/** C0 controls and DEL: never in a header value or a log line. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

// Shared by every principal without roles or attributes: nothing is allocated for them.
const NO_ROLES: readonly string[] = Object.freeze([]);
const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/** What went wrong, safe to show a client: names a claim, never its value. */
export interface ClaimProblem {
  readonly problem: string;
}

export class ClaimMapper {
  private readonly id: readonly ClaimPath[];
  private readonly tenantValue: string | undefined;
  private readonly tenant: readonly ClaimPath[];
  private readonly team: readonly ClaimPath[];
  private readonly user: readonly ClaimPath[];
  private readonly roles: readonly ClaimPath[];
  private readonly attributes: readonly (readonly [string, ClaimPath])[];
  private readonly idNames: string;
  private readonly tenantNames: string;

  constructor(issuer: Pick<JwtIssuerConfig, 'preset' | 'audiences' | 'tenant' | 'claims'>) {
    const t = issuer.tenant;
    const preset = presetClaims(issuer.preset, issuer.audiences);
    const c = issuer.claims;
    const pick = (own: ClaimSources[keyof ClaimSources], fromPreset: ClaimSources[keyof ClaimSources]) =>
      paths((own ?? fromPreset) as string | string[] | undefined);
    this.id = pick(c.id, preset.id ?? 'sub');
    this.tenantValue = typeof t === 'string' ? t : undefined;
    this.tenant = typeof t === 'string' ? [] : paths(t.claim);
    this.team = pick(c.team, preset.team);
    this.user = pick(c.user, preset.user);
    this.roles = pick(c.roles, preset.roles);
    this.attributes = Object.entries({ ...preset.attributes, ...c.attributes }).map(
      ([name, path]) => [name, parsed(path)] as const,
    );
    this.idNames = names(c.id ?? preset.id ?? 'sub');
    this.tenantNames = typeof t === 'string' ? '' : names(t.claim);
  }

  /** The principal, or the problem that keeps the token from naming one. */
  map(payload: Readonly<Record<string, unknown>>, issuer: string): Principal | ClaimProblem {
    const id = firstText(payload, this.id, MAX_ID_LENGTH);
    if (id === undefined) return { problem: `it has no usable ${this.idNames} claim for the caller's id` };
    const tenant = this.tenantValue ?? firstText(payload, this.tenant, MAX_ID_LENGTH);
    if (tenant === undefined) return { problem: `it has no usable ${this.tenantNames} claim for the tenant` };
    let attributes: Record<string, string> | undefined;
    for (const [name, path] of this.attributes) {
      const v = scalarText(readClaim(payload, path));
      if (v === undefined) continue;
      attributes ??= {};
      attributes[name] = v;
    }
    return {
      id,
      tenant,
      team: firstText(payload, this.team, MAX_TEXT_LENGTH),
      user: firstText(payload, this.user, MAX_TEXT_LENGTH),
      roles: this.roles.length === 0 ? NO_ROLES : collectRoles(payload, this.roles),
      attributes: attributes ?? NO_ATTRIBUTES,
      method: 'jwt',
      issuer,
      scope: undefined,
    };
  }
}

function paths(spec: string | readonly string[] | undefined): ClaimPath[] {
  if (spec === undefined) return [];
  return (typeof spec === 'string' ? [spec] : spec).map(parsed);
}

/** The config schema refused unparsable paths; one here is a programming error. */
function parsed(text: string): ClaimPath {
  const r = parseClaimPath(text);
  if ('error' in r) throw new Error(r.error);
  return r.path;
}

function names(spec: string | readonly string[]): string {
  return (typeof spec === 'string' ? [spec] : spec).join(' or ');
}

/** The first path holding a non-empty string without control characters, up to `max`. */
function firstText(
  payload: Readonly<Record<string, unknown>>,
  from: readonly ClaimPath[],
  max: number,
): string | undefined {
  for (const path of from) {
    const v = readClaim(payload, path);
    if (typeof v === 'string' && v !== '' && v.length <= max && !hasControl(v)) return v;
  }
  return undefined;
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string' && v.length <= MAX_TEXT_LENGTH && !hasControl(v)) return v;
  return undefined;
}

/** Every role under every path, each once, in order: a string claim is one role, a list is
 * its strings (other members are skipped). */
function collectRoles(payload: Readonly<Record<string, unknown>>, from: readonly ClaimPath[]): readonly string[] {
  const roles: string[] = [];
  for (const path of from) {
    const v = readClaim(payload, path);
    if (Array.isArray(v)) for (const r of v) addRole(roles, r);
    else addRole(roles, v);
  }
  return roles;
}

function addRole(roles: string[], r: unknown): void {
  if (roles.length >= MAX_ROLES || typeof r !== 'string' || r === '' || r.length > MAX_TEXT_LENGTH) return;
  if (!hasControl(r) && !roles.includes(r)) roles.push(r);
}
