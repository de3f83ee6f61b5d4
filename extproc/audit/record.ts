// The audit record: one JSON object per request that reached the gate (DESIGN §6). It names
// the principal by key id, never the key; it carries no header, prompt or response content.
// Absent facts are null, not zero: a request whose upstream reported no usage says so.
//
// Schema 2 names the model and token facts after OpenTelemetry's GenAI semantic conventions:
// the `gen_ai` object, flattened with dots, gives the attribute names (`gen_ai.request.model`,
// `gen_ai.usage.input_tokens`, …), so a SIEM or collector maps them without a table. Facts
// the conventions do not name keep LM Gate's own names.

import { type DlpAudit, dlpAudit } from '../dlp/gate/state.ts';
import type { ApiKind } from '../llm/apis.ts';
import type { UsageSource } from '../llm/usage.ts';
import { meteringFactsOf } from '../metering/facts.ts';
import type { BudgetCheck, LimitCheck, RequestContext } from '../pipeline/context.ts';
import { PHASE_LABEL, PHASES } from '../server/phases.ts';
import { type CaptureSummary, captureSummary } from './capture-stage.ts';

export const AUDIT_SCHEMA_VERSION = 2;

/** OpenTelemetry gen_ai.operation.name per API kind; null for listings, which the conventions
 * do not name. */
const OPERATION: Readonly<Record<ApiKind, string | null>> = {
  'openai.chat': 'chat',
  'openai.completions': 'text_completion',
  'openai.embeddings': 'embeddings',
  'openai.models': null,
  'ollama.chat': 'chat',
  'ollama.generate': 'text_completion',
  'ollama.embed': 'embeddings',
  'ollama.tags': null,
  'tgi.generate': 'text_completion',
  'tgi.generate_stream': 'text_completion',
  unknown: null,
};

export interface AuditRecord {
  schema_version: number;
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
  gen_ai: {
    operation: { name: string | null };
    /** model: what the client asked for (an alias as written); max_tokens: the most output
     * tokens it asked for (max_tokens, max_completion_tokens or Ollama's num_predict). */
    request: { model: string | null; max_tokens: number | null };
    /** model: what the model server says answered. */
    response: { model: string | null };
    /** As upstream reported it; null when it reported none. */
    usage: { input_tokens: number; output_tokens: number } | null;
  };
  /** The model name the gate sent upstream (an alias resolved), or null. */
  upstream_model: string | null;
  /** The route the gate chose (routing.routes[].name), or null. */
  route: string | null;
  stream: boolean;
  status: number | null;
  outcome: string;
  error: { code: string; type: string; status: number; rule_id: string | null } | null;
  failure: string | null;
  /** total: the stream's life in the gate; gate: time the gate itself spent, by phase;
   * upstream: from the gate releasing the request to the response headers reaching it (Envoy,
   * the network and the model server's time to first byte), null when none came. */
  latency_ms: { total: number; gate: number; upstream: number | null; phases: Record<string, number> };
  bytes: { request: number; response: number };
  /** Token totals and where they came from (upstream usage, the model's own tokenizer, or an
   * estimate); total_tokens null when usage is absent. cached_input_tokens: prompt tokens
   * upstream served from its cache, when it said. cost: under metering.prices, null when not
   * priced. labels: metering.labels, each null when absent or invalid. */
  metering: {
    total_tokens: number | null;
    source: UsageSource | null;
    cached_input_tokens: number | null;
    cost: { amount: number; currency: string } | null;
    labels: Record<string, string | null>;
  };
  decisions: { stage: string; rule_id: string; effect: string; reason: string }[];
  /** Rate limit levels checked, each with its decision; null when no limit applied. */
  limits: LimitCheck[] | null;
  /** Budgets checked: reserved, settled, refunded, period, state; null when none applied. */
  budgets: BudgetCheck[] | null;
  /** DLP findings (type, action, where, position; never the value), when a DLP stage ran. */
  dlp?: DlpAudit;
  /** The request's capture line (audit.capture): its SHA-256 and sizes, never its text; null
   * when the request was not captured. */
  capture: CaptureSummary | null;
}

const ms = (ns: bigint) => Math.round(Number(ns) / 1e3) / 1e3;

/** The path without its query string: query values can carry tokens or PII. */
function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

function dlpMember(ctx: RequestContext): { dlp?: DlpAudit } {
  const dlp = dlpAudit(ctx);
  return dlp === undefined ? {} : { dlp };
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
  const facts = meteringFactsOf(ctx);
  return {
    schema_version: AUDIT_SCHEMA_VERSION,
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
    gen_ai: {
      operation: { name: OPERATION[ctx.api] },
      request: { model: ctx.modelAlias ?? ctx.modelRequested ?? null, max_tokens: ctx.parsed?.maxTokens ?? null },
      response: { model: ctx.modelServed ?? null },
      usage: ctx.usage ? { input_tokens: ctx.usage.inputTokens, output_tokens: ctx.usage.outputTokens } : null,
    },
    upstream_model: ctx.modelRequested ?? null,
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
      upstream:
        ctx.requestReleasedNs !== undefined && ctx.responseHeadersNs !== undefined
          ? ms(ctx.responseHeadersNs - ctx.requestReleasedNs)
          : null,
      phases,
    },
    bytes: { request: ctx.requestBytes, response: ctx.responseBytes },
    metering: {
      total_tokens: ctx.usage?.totalTokens ?? null,
      source: ctx.usage?.source ?? null,
      cached_input_tokens: ctx.usage?.cachedInputTokens ?? null,
      cost: facts?.cost ?? null,
      labels: facts?.labels ?? {},
    },
    decisions: ctx.decisions.map((d) => ({ stage: d.stage, rule_id: d.ruleId, effect: d.effect, reason: d.reason })),
    limits: ctx.limits ?? null,
    budgets: ctx.budgets ?? null,
    ...dlpMember(ctx),
    capture: captureSummary(ctx),
  };
}
