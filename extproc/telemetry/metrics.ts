// Prometheus metrics, one registry per process. Label values come from closed sets (outcome,
// api kind, phase, status class); the one open set, model names, which clients and upstreams
// write, is bounded (BoundedLabel), so no client can blow up cardinality.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Cost } from '../metering/facts.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { PHASE_LABEL, PHASES, type Phase } from '../server/phases.ts';
import { BatchedCounter } from './batched.ts';

/** Model names seen as label values: the first MAX_MODEL_LABELS distinct ones keep their name,
 * later ones count under "other". A real deployment serves a handful of models; a client
 * inventing one per request cannot add series. */
export const MAX_MODEL_LABELS = 64;
const MODEL_LABEL = /^[A-Za-z0-9._:/@+-]{1,128}$/;

/** Distinct policy rule ids kept as label values; more count under "other". */
export const MAX_RULE_LABELS = 512;

/** Tenants kept as label values of the token and cost counters; more count under "other".
 * Tenants come from the config, keys or tokens: a real deployment has tens. */
export const MAX_TENANT_LABELS = 100;

export class BoundedLabel {
  private readonly seen = new Set<string>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  value(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max || !MODEL_LABEL.test(v)) return 'other';
    this.seen.add(v);
    return v;
  }
}

export class Metrics {
  readonly registry = new Registry();
  private readonly modelLabel = new BoundedLabel(MAX_MODEL_LABELS);
  readonly requests: BatchedCounter<'outcome' | 'api' | 'status_class'>;
  readonly tokens: BatchedCounter<'direction' | 'model'>;
  readonly usageAbsent: BatchedCounter<'api'>;
  readonly tenantTokens: BatchedCounter<'tenant' | 'model' | 'direction' | 'source'>;
  readonly cost: BatchedCounter<'tenant' | 'model' | 'currency'>;
  readonly unpriced: BatchedCounter<'model'>;
  private readonly tenantLabel = new BoundedLabel(MAX_TENANT_LABELS);
  readonly phaseSeconds: Histogram<'phase'>;
  readonly streamsActive: Gauge;
  readonly streamResets: Counter<'code'>;
  readonly protocolErrors: Counter;
  readonly filterConfigProblems: Gauge<'problem'>;
  readonly configReloads: Counter<'result'>;
  readonly auditRecords: Counter;
  readonly auditCaptures: Counter;
  readonly auditWriteErrors: Counter;
  readonly auditSlowWrites: Counter;
  readonly auditPendingBytes: Gauge;
  readonly auditRefusalsSummarised: Counter;
  readonly auditCheckpoints: Counter;
  readonly auditBreaks: Counter;
  readonly auditFsyncSeconds: Histogram;
  readonly workerRestarts: Counter;
  readonly jwksFetches: Counter<'issuer' | 'reason' | 'result'>;
  readonly jwksKeys: Gauge<'issuer'>;
  readonly policyDecisions: Counter<'rule' | 'effect'>;
  readonly dlpFindings: BatchedCounter<'type' | 'action' | 'where'>;
  readonly dlpInjections: Counter<'rule' | 'action'>;
  /** Rule ids come from the config (and an OPA policy's rule_id); bounded all the same. */
  private readonly ruleLabel = new BoundedLabel(MAX_RULE_LABELS);
  private readonly phaseChildren: (readonly [Phase, { observe(v: number): void }])[];

  /** This registry's text (admin.ts MetricsSource). */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'lmgate_' });
    this.requests = new BatchedCounter({
      name: 'lmgate_requests_total',
      help: 'Requests that reached the gate, by outcome, API kind and HTTP status class.',
      labelNames: ['outcome', 'api', 'status_class'],
      registers,
    });
    this.tokens = new BatchedCounter({
      name: 'lmgate_tokens_total',
      help: 'Tokens reported by upstream usage, by direction (input/output) and served model.',
      labelNames: ['direction', 'model'],
      registers,
    });
    this.usageAbsent = new BatchedCounter({
      name: 'lmgate_usage_absent_total',
      help: 'Completed LLM requests whose response reported no usage.',
      labelNames: ['api'],
      registers,
    });
    this.tenantTokens = new BatchedCounter({
      name: 'lmgate_tenant_tokens_total',
      help: 'Tokens metered (upstream usage, or counted by the gate: source tokenizer or estimated), by tenant, model sent upstream, direction (input/output) and source. Tenant and model labels are bounded: past the first 100 tenants and 64 models, "other".',
      labelNames: ['tenant', 'model', 'direction', 'source'],
      registers,
    });
    this.cost = new BatchedCounter({
      name: 'lmgate_cost_total',
      help: 'Cost of metered tokens under metering.prices, in currency units, by tenant, model sent upstream and currency (bounded labels, as for lmgate_tenant_tokens_total).',
      labelNames: ['tenant', 'model', 'currency'],
      registers,
    });
    this.unpriced = new BatchedCounter({
      name: 'lmgate_unpriced_requests_total',
      help: 'Requests for a model no price covers, priced 0 (metering.unknownModel: price_zero_warn), by model (bounded).',
      labelNames: ['model'],
      registers,
    });
    this.phaseSeconds = new Histogram({
      name: 'lmgate_phase_duration_seconds',
      help: "Gate processing time per request in each phase it went through (from receipt to answer, summed over the phase's messages: a streamed response body is one observation, not one per chunk).",
      labelNames: ['phase'],
      buckets: [
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      ],
      registers,
    });
    this.streamsActive = new Gauge({
      name: 'lmgate_streams_active',
      help: 'ext_proc streams (HTTP requests) in flight.',
      registers,
    });
    this.streamResets = new Counter({
      name: 'lmgate_ext_proc_stream_resets_total',
      help: "ext_proc streams Envoy reset (RST_STREAM) instead of closing them, by HTTP/2 error code. INTERNAL_ERROR on every request means Envoy's ext_proc graceful close is off (see envoy/envoy.yaml's layered_runtime); each reset costs the gate an Error with a stack.",
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.protocolErrors = new Counter({
      name: 'lmgate_protocol_errors_total',
      help: 'ext_proc streams ended with a gRPC error because Envoy sent an unexpected message.',
      registers,
    });
    this.filterConfigProblems = new Gauge({
      name: 'lmgate_envoy_filter_config_problems',
      help: "1 for each problem seen in Envoy's ext_proc filter settings (protocol_config) that stops the gate from governing or metering requests; /readyz lists them.",
      labelNames: ['problem'],
      // Gate workers each report the problems they saw: one problem is 1, not one per worker.
      aggregator: 'max',
      registers,
    });
    this.configReloads = new Counter({
      name: 'lmgate_config_reloads_total',
      help: 'Config reloads by result (applied, rejected).',
      labelNames: ['result'],
      registers,
    });
    this.auditRecords = new Counter({ name: 'lmgate_audit_records_total', help: 'Audit records written.', registers });
    this.auditCaptures = new Counter({
      name: 'lmgate_audit_captures_total',
      help: 'Capture lines written (audit.capture): requests whose prompt and response texts were kept.',
      registers,
    });
    this.auditWriteErrors = new Counter({
      name: 'lmgate_audit_write_errors_total',
      help: 'Failed audit writes (retried; records are kept).',
      registers,
    });
    this.auditSlowWrites = new Counter({
      name: 'lmgate_audit_slow_writes_total',
      help: 'Synchronous audit appends that took over 2 ms; two within a second, or one over 50 ms, move the sink to thread-pool writes for 10 s.',
      registers,
    });
    this.auditPendingBytes = new Gauge({
      name: 'lmgate_audit_pending_bytes',
      help: 'Audit bytes waiting to be written.',
      registers,
    });
    this.auditRefusalsSummarised = new Counter({
      name: 'lmgate_audit_refusals_summarised_total',
      help: 'Requests refused because the audit sink could not take records (503 audit_unavailable) that were counted in a refusal_summary line instead of recorded one by one (past audit.maxRefusalBytes).',
      registers,
    });
    this.auditCheckpoints = new Counter({
      name: 'lmgate_audit_checkpoints_total',
      help: 'Audit checkpoints written (each signed when audit.signingKey is set).',
      registers,
    });
    this.auditBreaks = new Counter({
      name: 'lmgate_audit_chain_breaks_total',
      help: 'Audit chain breaks recorded at start: the previous writer stopped without a shutdown checkpoint.',
      registers,
    });
    this.auditFsyncSeconds = new Histogram({
      name: 'lmgate_audit_fsync_seconds',
      help: 'Time of each audit file fsync (audit.durability interval or strict).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
    this.workerRestarts = new Counter({
      name: 'lmgate_worker_restarts_total',
      help: 'Gate workers (server.workers > 1) restarted after their thread exited.',
      registers,
    });
    // Issuers come from the config, so both label sets are bounded by it.
    this.jwksFetches = new Counter({
      name: 'lmgate_jwks_fetches_total',
      help: "Fetches of an issuer's signing keys (discovery and JWKS), by reason (startup: the issuer was configured, until its first keys; refresh: the background interval; unknown_kid: a token named a key the cache lacked, the only fetch a request can cause) and result (ok, error).",
      labelNames: ['issuer', 'reason', 'result'],
      registers,
    });
    this.jwksKeys = new Gauge({
      name: 'lmgate_jwks_keys',
      help: 'Signing keys cached per JWT issuer.',
      labelNames: ['issuer'],
      // Each gate worker caches the same keys: one issuer's count is not one per worker.
      aggregator: 'max',
      registers,
    });
    const flush = () => this.flushDecisions();
    this.policyDecisions = new Counter({
      name: 'lmgate_policy_decisions_total',
      collect: flush,
      help: 'Policy decisions by the rule that decided (its config path: policy.rules.<id>, policy.default, policy.tenantIsolation.<tenant>, identity.apiKeys.<id>.models, opa:<path> or the rule_id OPA returned) and effect (allow, deny).',
      labelNames: ['rule', 'effect'],
      registers,
    });
    this.dlpFindings = new BatchedCounter({
      name: 'lmgate_dlp_findings_total',
      help: 'DLP findings by detector type (built-in or custom, bounded), action taken (block, redact, mask, pseudonymise, warn) and where (request, response).',
      labelNames: ['type', 'action', 'where'],
      registers,
    });
    this.dlpInjections = new Counter({
      name: 'lmgate_dlp_injection_detections_total',
      help: 'Prompt-injection detections by rule (injection.<rule>, injection.classifier, injection.classifier_error; bounded) and action (block: refused; flag: admitted and recorded; allow: a classifier failure let through by onError allow).',
      labelNames: ['rule', 'action'],
      registers,
    });
    // Children resolved once: observing is then a plain method call.
    this.phaseChildren = PHASES.map((p) => [p, this.phaseSeconds.labels(PHASE_LABEL[p])] as const);
  }

  /** Decisions counted since the last scrape, by rule id: [allow, deny]. prom-client's inc()
   * hashes the label values on every call (~140 ns); this is a Map lookup, and the counter
   * catches up when it is collected. Bounded like the label values: ids past the bound count
   * under "other". */
  private readonly pendingDecisions = new Map<string, [number, number]>();

  countPolicyDecision(ruleId: string, effect: 'allow' | 'deny'): void {
    let counts = this.pendingDecisions.get(ruleId);
    if (counts === undefined) {
      const label = this.ruleLabel.value(ruleId);
      counts = this.pendingDecisions.get(label);
      if (counts === undefined) {
        counts = [0, 0];
        this.pendingDecisions.set(label, counts);
      }
    }
    counts[effect === 'allow' ? 0 : 1]++;
  }

  /** One DLP finding. Types come from the config (built-in names and custom patterns), bounded
   * like rule ids all the same. */
  countDlpFinding(type: string, action: string, where: 'request' | 'response', by = 1): void {
    this.dlpFindings.inc([this.ruleLabel.value(type), action, where], by);
  }

  /** A body's DLP findings, counted once per type and action: a prompt's findings share a few
   * (every address an EMAIL redacted), and a call per finding built its label key each time. The
   * distinct pairs are bounded by the policy (its detectors and rules), so the search is too. */
  countDlpFindings(findings: readonly { type: string; action: string }[], where: 'request' | 'response'): void {
    if (findings.length === 1) {
      this.countDlpFinding(findings[0]!.type, findings[0]!.action, where);
      return;
    }
    const types: string[] = [];
    const actions: string[] = [];
    const counts: number[] = [];
    for (let i = 0; i < findings.length; i++) {
      const f = findings[i]!;
      let k = 0;
      while (k < types.length && (types[k] !== f.type || actions[k] !== f.action)) k++;
      if (k === types.length) {
        types.push(f.type);
        actions.push(f.action);
        counts.push(1);
      } else counts[k] = counts[k]! + 1;
    }
    for (let k = 0; k < types.length; k++) this.countDlpFinding(types[k]!, actions[k]!, where, counts[k]!);
  }

  /** One rule of a prompt-injection detection and what was done about it. */
  countDlpInjection(rule: string, action: 'block' | 'flag' | 'allow'): void {
    this.dlpInjections.inc({ rule: this.ruleLabel.value(rule), action });
  }

  private flushDecisions(): void {
    for (const [rule, counts] of this.pendingDecisions) {
      if (counts[0] > 0) this.policyDecisions.inc({ rule, effect: 'allow' }, counts[0]);
      if (counts[1] > 0) this.policyDecisions.inc({ rule, effect: 'deny' }, counts[1]);
      counts[0] = 0;
      counts[1] = 0;
    }
  }

  /** Tokens and cost by tenant and model, once per request (metering.usage, at its end). */
  countCost(ctx: RequestContext, cost: Cost | null): void {
    const u = ctx.usage;
    if (u === undefined) return;
    const tenant = this.tenantLabel.value(ctx.principal?.tenant ?? 'none');
    const model = this.modelLabel.value(ctx.modelRequested ?? ctx.parsed?.model ?? 'unknown');
    this.tenantTokens.inc([tenant, model, 'input', u.source], u.inputTokens);
    this.tenantTokens.inc([tenant, model, 'output', u.source], u.outputTokens);
    if (cost !== null) this.cost.inc([tenant, model, cost.currency], cost.amount);
  }

  countUnpriced(model: string): void {
    this.unpriced.inc([this.modelLabel.value(model)]);
  }

  /** Once per request, at its end: per-chunk observations cost a streamed response more than
   * the rest of its metrics together. */
  observeRequest(ctx: RequestContext): void {
    const g = ctx.gateNs;
    for (const [phase, child] of this.phaseChildren) if (g[phase] > 0n) child.observe(Number(g[phase]) / 1e9);
    const status = ctx.clientStatus();
    const statusClass = status === undefined ? 'none' : `${Math.floor(status / 100)}xx`;
    this.requests.inc([ctx.outcome ?? 'error', ctx.api, statusClass]);
    if (ctx.usage) {
      const model = this.modelLabel.value(ctx.modelServed ?? ctx.modelRequested ?? 'unknown');
      this.tokens.inc(['input', model], ctx.usage.inputTokens);
      this.tokens.inc(['output', model], ctx.usage.outputTokens);
    } else if (ctx.outcome === 'completed' && ctx.parsed !== undefined) {
      this.usageAbsent.inc([ctx.api]);
    }
  }
}
