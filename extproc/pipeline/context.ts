// One request's state, shared by the stages in order and read by the audit and telemetry at the
// end. Created by the stream state machine when Envoy opens a stream; never shared across
// requests.
import type { Config } from '../config/schema.ts';
import type { BodyEdit } from '../llm/body-edits.ts';
import type { ResponseReading } from '../llm/response-reader.ts';
import type { ApiKind, ParsedRequest } from '../llm/shapes.ts';
import type { Usage } from '../llm/usage.ts';
import { type PhaseTimes, zeroPhaseTimes } from '../server/phases.ts';
import type { ErrorCode, GateError } from './errors.ts';
import type { Slot } from './slots.ts';

/** Who is calling, the same shape however they were identified: policy, limits and the audit
 * read only this, never the credential. */
export interface Principal {
  /** Stable id of the caller within its issuer: the API key's id, a JWT's subject, a client
   * certificate's SAN. Never the credential itself. */
  readonly id: string;
  readonly tenant: string;
  readonly team: string | undefined;
  readonly user: string | undefined;
  readonly roles: readonly string[];
  /** Further claims mapped from the credential (a JWT claim, a certificate field). */
  readonly attributes: Readonly<Record<string, string>>;
  /** How the caller was identified. */
  readonly method: 'api_key' | 'jwt' | 'mtls';
  /** Who vouches for the identity: "config" for keys in the config file, a JWT's iss, the
   * client CA. */
  readonly issuer: string;
  /** Limits the credential itself carries (an API key restricted to some models), or none. */
  readonly scope: CredentialScope | undefined;
}

/** What Envoy says about the downstream connection's client certificate, from the ext_proc
 * request attributes (extproc/server/attributes.ts); undefined when Envoy sent none. Envoy
 * verified the certificate against the listener's validation_context before any request. */
export interface PeerFacts {
  /** connection.mtls: the connection is TLS and the client presented a certificate. */
  readonly mtls: boolean;
  /** connection.uri_san_peer_certificate: the first URI SAN only; Envoy shows no others. */
  readonly uriSan: string | undefined;
  /** connection.subject_peer_certificate, RFC 2253 ("CN=billing,O=Acme"). */
  readonly subject: string | undefined;
  /** connection.peer_certificate, PEM: every URI SAN is read from it, so a certificate with
   * several is recognised as ambiguous. */
  readonly certificate: string | undefined;
}

export interface CredentialScope {
  /** Endpoints (API kinds) allowed, or 'all', which also admits non-LLM paths when
   * policy.unknownEndpoints allows them. */
  endpoints: ReadonlySet<string> | 'all';
  models(model: string): boolean;
  /** models admits every model (`*`): only then may the credential call an API whose body names
   * no model (TGI's native API without routing.tgiModel). Unset: limited, so refused. */
  anyModel?: boolean;
  /** The config path that set the scope: the rule id a refusal names. */
  source: string;
}

/** The dynamic metadata the gate sets in Envoy's `lm_gate` namespace, for access logs and later
 * filters (%DYNAMIC_METADATA(lm_gate:tenant)%). Typed so a key cannot be misspelt. */
export interface LmGateMetadata {
  request_id: string;
  api: ApiKind;
  tenant: string;
  principal_id: string;
  model_requested: string;
  stream: boolean;
  status: number;
  outcome: Outcome;
  error_code: ErrorCode;
  rule_id: string;
  route: string;
  model_served: string;
  input_tokens: number;
  output_tokens: number;
  usage: 'upstream' | 'absent';
}

/** One limit level a request was checked against (the audit's `limits`). */
export interface LimitCheck {
  /** limits.rate[].id */
  id: string;
  /** Whose counter: `<scope>:<id>` ("team:research", "model:llama-3.1-8b"). */
  level: string;
  unit: 'requests' | 'tokens' | 'bytes';
  limit: number;
  /** Left after this request (when admitted), at the decision. */
  remaining: number;
  decision: 'admitted' | 'refused';
  /** ms the request waited in this limit's queue (queueMs) before it was admitted or refused. */
  queued_ms?: number;
  /** The request ended while it waited in this limit's queue: the turn it had reserved went
   * back to the next in line (its tokens are settled to nothing, as never sent upstream). */
  left_queue?: true;
  /** tokens: reserved before the call, and what it was settled to at the end. */
  reserved?: number;
  settled?: number;
  /** Redis could not answer and the limit failed open: counted in this replica alone. */
  fail_open?: true;
}

/** One budget a request was checked against (the audit's `budgets`). */
export interface BudgetCheck {
  /** limits.budgets[].id */
  id: string;
  level: string;
  unit: 'tokens' | 'currency';
  /** The period's first day, in the budget's time zone ("2026-11-01"). */
  period: string;
  amount: number;
  reserved: number;
  settled: number | null;
  refunded: number;
  /** admitted; downgraded (spent: sent to downgradeTo); refused. */
  state: 'admitted' | 'downgraded' | 'refused';
  fail_open?: true;
}

/** Why ctx.signal aborted. */
export type AbortReason = 'deadline' | 'cancelled' | 'drain' | 'finished';

/** A policy decision worth explaining later: which stage and rule decided what. */
export interface Decision {
  stage: string;
  ruleId: string;
  effect: 'allow' | 'deny' | 'modify';
  reason: string;
}

/** completed: upstream answered 1xx-3xx; rejected: the gate refused; upstream_error: upstream
 * answered 4xx/5xx; local_reply: Envoy answered the client itself before the request was
 * judged (its 413 over the buffer limit, 408 stalled upload, 400 malformed request), so nothing
 * reached the model server; cancelled: the stream ended early; error: the gate failed. */
export type Outcome = 'completed' | 'rejected' | 'upstream_error' | 'local_reply' | 'cancelled' | 'error';
export type BodyNeed = 'NONE' | 'BUFFERED' | 'STREAMED';

/** What the current phase's answer should carry, filled by stages, reset per message. */
export class PhaseOutput {
  readonly setHeaders: [string, string][] = [];
  readonly removeHeaders: string[] = [];
  clearRouteCache = false;
  /** A stage is about to take longer than server.messageDeadlineMs (a large body parsed off
   * the event loop): the state machine asks Envoy for server.maxMessageDeadlineMs first. */
  slow = false;
  reset(): void {
    this.setHeaders.length = 0;
    this.removeHeaders.length = 0;
    this.clearRouteCache = false;
    this.slow = false;
  }
}

/** The upstream a routing stage chose: its name (what Envoy's route matches on) and the labels
 * policy rules read (residency, data classes it may receive, owning tenant). */
export interface RouteChoice {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

const NO_CLASSES: ReadonlySet<string> = new Set();

export class RequestContext {
  readonly config: Config;
  readonly startedAtMs = Date.now();
  readonly startNs = process.hrtime.bigint();
  /** x-request-id from Envoy (it generates one unless told not to), else our own. */
  requestId = '';

  // ---- request ----
  method = '';
  path = '';
  authority = '';
  /** Request headers, lower-case names; repeated headers joined with ",". */
  readonly headers = new Map<string, string>();
  /** The request carries a body (headers did not end the stream). */
  hasRequestBody = false;
  requestBytes = 0;
  api: ApiKind = 'unknown';
  /** The connection's client certificate as Envoy describes it, when it sent the attributes. */
  peer: PeerFacts | undefined;
  principal: Principal | undefined;
  parsed: ParsedRequest | undefined;
  /** The request body as it should go upstream, when a stage rewrote it. Stages rewrite bytes,
   * never a re-serialised parse: JSON.stringify(JSON.parse(x)) rounds integers above 2^53 (a
   * 64-bit seed) and reorders nothing else we could promise to keep. A stage that rewrites reads
   * `ctx.rewrittenBody ?? body`, so rewrites chain. */
  rewrittenBody: Buffer | undefined;
  /** Splices of the canonical body (spans of ctx.parsed), applied together when the body is
   * answered; see editRequestBody. */
  requestBodyEdits: BodyEdit[] | undefined;
  /** The model the request asks the model server for: the body's `model`, or its target once
   * routing resolved an alias. Policy judges this name, because it is the one upstream parses. */
  modelRequested: string | undefined;
  /** The name the client wrote when routing replaced it (a model alias); undefined otherwise. */
  modelAlias: string | undefined;
  stream = false;
  /** Data classes found in the request (PII, PHI, PCI, SECRET, ...), by the stages that
   * provide the dataClasses fact; empty until one runs. Policy and routing read it. */
  dataClasses: ReadonlySet<string> = NO_CLASSES;
  /** The upstream chosen by the stage that provides the route fact; undefined until then. */
  route: RouteChoice | undefined;

  // ---- response ----
  status: number | undefined;
  contentType: string | undefined;
  /** Response headers, lower-case names. */
  readonly responseHeaders = new Map<string, string>();
  responseBytes = 0;
  /** What the stages need of the response body; the strongest need wins (STREAMED > BUFFERED > NONE). */
  responseBodyNeed: BodyNeed = 'NONE';
  /** A stage may change the response body's bytes (so its content-length cannot stand). */
  responseBodyRewritten = false;
  /** The response headers went on to the client (the body is streamed or not read): from here
   * a refusal can only cut the response, and the client's status is the upstream one. */
  responseStarted = false;
  modelServed: string | undefined;
  usage: Usage | undefined;

  // ---- outcome ----
  readonly decisions: Decision[] = [];
  /** Rate limit levels and budgets checked (limits stages); undefined when none ran. */
  limits: LimitCheck[] | undefined;
  budgets: BudgetCheck[] | undefined;
  outcome: Outcome | undefined;
  error: GateError | undefined;
  /** Protocol or internal failure detail, for the audit and logs (never client input). */
  failure: string | undefined;
  /** Gate processing time per phase, nanoseconds, summed over that phase's messages. */
  readonly gateNs: PhaseTimes = zeroPhaseTimes();
  responseChunks = 0;
  /** hrtime when the gate released the request to go upstream (its answer to the last request
   * message), and when the response headers reached it: the audit's upstream latency. */
  requestReleasedNs: bigint | undefined;
  responseHeadersNs: bigint | undefined;

  readonly out = new PhaseOutput();
  /** Dynamic metadata (namespace lm_gate) set so far; answers carry what is new (metadataUnsent). */
  readonly metadata: Partial<LmGateMetadata> = {};
  /** Keys set since the last answer carried metadata: Envoy merges each answer's struct into the
   * namespace key by key, so only these need encoding again. Undefined when none. */
  metadataUnsent: Partial<LmGateMetadata> | undefined;

  /** Stage state, by slot (see slots.ts). */
  private readonly slots: unknown[] = [];

  constructor(config: Config) {
    this.config = config;
  }

  /** Replace [start, end) of the canonical request body (the spans ctx.parsed holds) with
   * `insert`. Edits from several stages are applied together after the last body hook, so each
   * stage's spans stay valid whatever the others change. */
  editRequestBody(start: number, end: number, insert: Buffer): void {
    if (this.requestBodyEdits === undefined) this.requestBodyEdits = [];
    this.requestBodyEdits.push({ start, end, insert });
  }

  /** The stages' onRequestBody will run for this request: an LLM call (POST to an LLM API) with a
   * body. A stage deciding at request headers knows from this whether the body's facts are still
   * to come or will never come. */
  get bodyFollows(): boolean {
    return this.hasRequestBody && this.api !== 'unknown' && this.method === 'POST';
  }

  get<T>(slot: Slot<T>): T | undefined {
    return this.slots[slot.index] as T | undefined;
  }

  set<T>(slot: Slot<T>, value: T | undefined): void {
    this.slots[slot.index] = value;
  }

  /** What takeLonger() asks: the state machine, which installs itself. */
  slowPath: { takeLonger(): void } | undefined;

  /** Puts the message being decided on the slow path (server.maxMessageDeadlineMs, Envoy asked
   * to wait as long) once a stage learns it late, after an async step (a rate limit queue after
   * the store answered). Before any async step, setting `out.slow` does the same. */
  takeLonger(): void {
    this.slowPath?.takeLonger();
  }

  private abortController: AbortController | undefined;
  private abortReason: AbortReason | undefined;

  /** Aborts when the gate stops waiting for this request's stages: the message deadline, Envoy
   * cancelling the stream, the drain deadline, or the end of the request. Pass it to every call
   * a hook awaits (Redis, JWKS, HTTP), so abandoned work stops. Created on first use. */
  get signal(): AbortSignal {
    this.abortController ??= new AbortController();
    if (this.abortReason !== undefined && !this.abortController.signal.aborted) this.fireAbort();
    return this.abortController.signal;
  }

  /** Why the signal aborted, or undefined while the gate still waits for the stages. */
  get aborted(): AbortReason | undefined {
    return this.abortReason;
  }

  abort(reason: AbortReason): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    if (this.abortController) this.fireAbort();
  }

  private fireAbort(): void {
    const err = new Error(`request ${this.abortReason}`);
    err.name = 'AbortError';
    this.abortController!.abort(err);
  }

  /** The HTTP status the client saw: the gate's refusal unless the response had already
   * started, in which case the refusal could only cut it short. */
  clientStatus(): number | undefined {
    if (this.responseStarted) return this.status;
    return this.error?.status ?? this.status;
  }

  setMetadata<K extends keyof LmGateMetadata>(key: K, value: LmGateMetadata[K] | undefined): void {
    if (value === undefined) return;
    this.metadata[key] = value;
    this.metadataUnsent ??= {};
    this.metadataUnsent[key] = value;
  }

  /** What the stages asked of the response body (readResponseBody), or undefined. */
  responseReading: ResponseReading | undefined;
  /** The error the client's response stream was ended with (endResponseStream). */
  streamError: GateError | undefined;

  /** From onResponseHeaders: have the gate read the response body, framed once for every stage.
   * Usage and the served model then land on the context as the body passes; with events, every
   * streamed event reaches the stages' onResponseEvent. Only a 2xx answer of an LLM API, in a
   * format the gate reads (SSE, NDJSON, JSON), is read. */
  readResponseBody(ask: Partial<ResponseReading> = {}): void {
    this.responseReading ??= { events: false, withholdUsageEvent: false };
    const r = this.responseReading;
    if (ask.events) r.events = true;
    if (ask.withholdUsageEvent) r.withholdUsageEvent = true;
    if (ask.observeEvents) r.observeEvents = true;
  }

  /** From onResponseEvent: end the client's stream with an OpenAI-style error event (the SDKs
   * raise it), in place of the current event; nothing after it reaches the client. The response
   * status stays upstream's (the headers have left); the audit records the code and outcome. */
  endResponseStream(err: GateError): void {
    this.streamError ??= err;
  }

  /** Raw body bytes for a stage's onResponseBody; stages that read content use readResponseBody. */
  needResponseBody(need: BodyNeed): void {
    if (need === 'STREAMED' || (need === 'BUFFERED' && this.responseBodyNeed === 'NONE')) this.responseBodyNeed = need;
  }

  decide(d: Decision): void {
    this.decisions.push(d);
  }
}
