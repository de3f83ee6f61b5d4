// The audit record: one JSON object per request that reached the gate (DESIGN §6). It names
// the principal by key id, never the key; it carries no header, prompt or response content.
// Absent facts are null, not zero: a request whose upstream reported no usage says so.
import type { RequestContext } from '../pipeline/context.ts';
import { PHASE_LABEL, PHASES } from '../server/phases.ts';

export const AUDIT_SCHEMA_VERSION = 1;

export interface AuditRecord {
  v: number;
  time: string;
  request_id: string;
  principal: {
    /** The caller's stable id within its issuer (API key id, JWT subject, certificate SAN). */
    id: string;
    /** The API key's id when identified by one, else null. */
    key_id: string | null;
    tenant: string;
    team: string | null;
    user: string | null;
    /** The roles the caller carried (from its key or its token's claims), which policy read. */
    roles: readonly string[];
    method: string;
    issuer: string;
  } | null;
  endpoint: { method: string; path: string; api: string };
  /** requested: what the client asked for; upstream: what the gate sent (an alias resolved);
   * served: what the model server says answered. */
  model: { requested: string | null; upstream: string | null; served: string | null };
  /** The route the gate chose (routing.routes[].name), or null. */
  route: string | null;
  stream: boolean;
  status: number | null;
  outcome: string;
  error: { code: string; type: string; status: number; rule_id: string | null } | null;
  failure: string | null;
  latency_ms: { total: number; gate: number; phases: Record<string, number> };
  bytes: { request: number; response: number };
  usage: { input_tokens: number; output_tokens: number; total_tokens: number; source: 'upstream' } | null;
  decisions: { stage: string; rule_id: string; effect: string; reason: string }[];
}

const ms = (ns: bigint) => Math.round(Number(ns) / 1e3) / 1e3;

/** The path without its query string: query values can carry tokens or PII. */
function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

export function buildAuditRecord(ctx: RequestContext): AuditRecord {
  const g = ctx.gateNs;
  let gate = 0n;
  const phases: Record<string, number> = {};
  for (const phase of PHASES) {
    gate += g[phase];
    phases[PHASE_LABEL[phase]] = ms(g[phase]);
  }
  const p = ctx.principal;
  return {
    v: AUDIT_SCHEMA_VERSION,
    time: new Date(ctx.startedAtMs).toISOString(),
    request_id: ctx.requestId,
    principal: p
      ? {
          id: p.id,
          key_id: p.method === 'api_key' ? p.id : null,
          tenant: p.tenant,
          team: p.team ?? null,
          user: p.user ?? null,
          roles: p.roles,
          method: p.method,
          issuer: p.issuer,
        }
      : null,
    endpoint: { method: ctx.method, path: pathOnly(ctx.path), api: ctx.api },
    model: {
      requested: ctx.modelAlias ?? ctx.modelRequested ?? null,
      upstream: ctx.modelRequested ?? null,
      served: ctx.modelServed ?? null,
    },
    route: ctx.route?.name ?? null,
    stream: ctx.stream,
    status: ctx.clientStatus() ?? null,
    outcome: ctx.outcome ?? 'error',
    error: ctx.error
      ? { code: ctx.error.code, type: ctx.error.type, status: ctx.error.status, rule_id: ctx.error.ruleId ?? null }
      : null,
    failure: ctx.failure ?? null,
    latency_ms: {
      total: ms(process.hrtime.bigint() - ctx.startNs),
      gate: ms(gate),
      phases,
    },
    bytes: { request: ctx.requestBytes, response: ctx.responseBytes },
    usage: ctx.usage
      ? {
          input_tokens: ctx.usage.inputTokens,
          output_tokens: ctx.usage.outputTokens,
          total_tokens: ctx.usage.totalTokens,
          source: 'upstream',
        }
      : null,
    decisions: ctx.decisions.map((d) => ({ stage: d.stage, rule_id: d.ruleId, effect: d.effect, reason: d.reason })),
  };
}
