// The per-stream state machine. Envoy opens one bidirectional gRPC stream per HTTP request and
// sends one ProcessingRequest per enabled phase; this class owns protocol correctness:
//
// - exactly one answer, of the matching type, per message (none in observability mode);
// - messages are handled strictly in order, one at a time, even when a stage is async;
// - an out-of-order or unknown message ends the stream with a gRPC error (Envoy then applies
//   failure_mode_allow, which we ship false: the client gets a 500), never a crash;
// - a message the stages do not finish within server.messageDeadlineMs is answered with a 503
//   ImmediateResponse, so Envoy's own message_timeout never decides for us;
// - the stream is never ended cleanly while Envoy still waits for an answer: Envoy would then
//   carry on without the processor and unprocessed data would pass;
// - every stream, admitted, rejected, failed or cancelled, is finished exactly once: stages'
//   onEnd, one audit record, metrics.
//
// Reference: envoy/source/extensions/filters/http/ext_proc/{ext_proc.cc,processor_state.cc}.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { buildAuditRecord } from '../audit/record.ts';
import type { AuditSink } from '../audit/sink.ts';
import type { Config } from '../config/schema.ts';
import { classifyPath } from '../llm/shapes.ts';
import { type PhaseOutput, RequestContext } from '../pipeline/context.ts';
import { errors, GateError } from '../pipeline/errors.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import {
  BodySendMode,
  type CommonResponse,
  type HttpBody,
  type HttpHeaders,
  headerMutation,
  headerValueOf,
  type Phase,
  type ProcessingRequest,
  type ProcessingResponse,
  toStruct,
} from './protocol.ts';

export interface Runtime {
  readonly config: Config;
  readonly pipeline: Pipeline;
}

export interface StreamDeps {
  /** The config and pipeline in force now; a stream keeps the one it started with. */
  runtime(): Runtime;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly audit: AuditSink;
  /** Refusal to apply to every new request (draining, audit sink full), or undefined. */
  admission(): GateError | undefined;
  onFinished(stream: ProcessStream): void;
}

/** Headers a client must never set: the gate's own, which Envoy, the model server and other
 * filters trust. Stripped on every request before any stage reads headers. */
const INTERNAL_HEADER_PREFIX = 'x-lmgate-';

export const METADATA_NAMESPACE = 'lm_gate';

type Call = ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

/** Bits of ProcessStream.seen: which phases have arrived. */
const Seen = { RequestHeaders: 1, RequestBodyEnd: 2, ResponseHeaders: 4, ResponseBodyEnd: 8 } as const;

export class ProcessStream {
  readonly ctx: RequestContext;
  private readonly call: Call;
  private readonly deps: StreamDeps;
  private readonly pipeline: Pipeline;
  private readonly queue: ProcessingRequest[] = [];
  private busy = false;
  private seen = 0;
  /** finish() ran: audit written. Later messages still get their pass-through answers. */
  private finished = false;
  /** The gRPC stream is over (ended, cancelled, errored): nothing more may be written. */
  private closed = false;
  /** An ImmediateResponse was sent; Envoy closes the stream after it. */
  private answeredImmediately = false;
  private requestBodyBytes = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineExpired = false;
  private current: { phase: Phase; startNs: bigint; observe: boolean } | undefined;

  constructor(call: Call, deps: StreamDeps) {
    this.call = call;
    this.deps = deps;
    const rt = deps.runtime();
    this.pipeline = rt.pipeline;
    this.ctx = new RequestContext(rt.config);
    deps.metrics.streamsActive.inc();
    call.on('data', this.onData);
    call.on('end', this.onEnd);
    call.on('cancelled', this.onCancelled);
    call.on('error', this.onError);
  }

  // ---- gRPC stream events (bound once per stream, not per message) ----

  private readonly onData = (msg: ProcessingRequest): void => {
    if (this.closed) return;
    this.queue.push(msg);
    this.pump();
  };

  /** Envoy half-closed: the HTTP stream is over on its side. */
  private readonly onEnd = (): void => {
    if (!this.finished) {
      // Envoy stops sending before the phases we expected: the downstream client or the
      // upstream went away mid-request, or Envoy's own timeout fired.
      this.ctx.failure ??= 'envoy closed the stream before the request completed';
      this.finish('cancelled');
    }
    this.close();
  };

  private readonly onCancelled = (): void => {
    this.ctx.failure ??= 'envoy cancelled the stream';
    this.closed = true;
    this.finish('cancelled');
  };

  private readonly onError = (err: Error): void => {
    this.deps.logger.debug({ requestId: this.ctx.requestId, err: err.message }, 'ext_proc stream error');
    this.closed = true;
    this.ctx.failure ??= `stream error: ${err.message}`;
    this.finish('cancelled');
  };

  private readonly resume = (): void => {
    this.clearDeadline();
    this.busy = false;
    this.pump();
  };

  private readonly fail = (err: unknown): void => {
    this.clearDeadline();
    this.busy = false;
    if (!this.deadlineExpired) this.rejectCurrent(err);
    this.pump();
  };

  private readonly onDeadline = (): void => {
    this.deadlineTimer = undefined;
    this.deadlineExpired = true;
    this.ctx.failure = `a stage did not answer ${this.current?.phase} within ${this.ctx.config.server.messageDeadlineMs} ms`;
    this.deps.logger.warn({ requestId: this.ctx.requestId, phase: this.current?.phase }, 'message deadline exceeded');
    this.rejectCurrent(
      errors.unavailable('The gateway could not decide in time; retry the request.', 'gateway_timeout'),
    );
    // The late stage result is dropped; the stream is finished and answers nothing more.
    this.busy = false;
    this.queue.length = 0;
  };

  // ---- message loop ----

  private pump(): void {
    while (!this.busy && this.queue.length > 0 && !this.closed) {
      const msg = this.queue.shift()!;
      let pending: void | Promise<void>;
      try {
        pending = this.handle(msg);
      } catch (err) {
        this.rejectCurrent(err);
        continue;
      }
      if (pending) {
        this.busy = true;
        this.deadlineExpired = false;
        this.deadlineTimer = setTimeout(this.onDeadline, this.ctx.config.server.messageDeadlineMs);
        pending.then(this.resume, this.fail);
      }
    }
  }

  private clearDeadline(): void {
    if (this.deadlineTimer) {
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
  }

  private handle(msg: ProcessingRequest): void | Promise<void> {
    const phase = msg.request;
    if (phase === undefined) return this.protocolError('ProcessingRequest carries no request');
    const observe = msg.observabilityMode === true;
    this.current = { phase, startNs: process.hrtime.bigint(), observe };

    if (this.answeredImmediately) {
      // Envoy closes the stream after an ImmediateResponse; anything that still arrives is
      // answered nothing (Envoy no longer reads) and ignored.
      return;
    }
    if (this.finished) {
      // Already audited (for instance the response body was not needed, but Envoy was
      // configured to send it anyway): answer pass-through so Envoy is never left waiting.
      this.answerPassThrough(phase);
      return;
    }

    switch (phase) {
      case 'requestHeaders':
        if (this.seen & Seen.RequestHeaders) return this.protocolError('request_headers received twice');
        this.seen |= Seen.RequestHeaders;
        return this.onRequestHeaders(msg.requestHeaders ?? {});
      case 'requestBody':
        if (!(this.seen & Seen.RequestHeaders)) return this.protocolError('request_body before request_headers');
        if (this.seen & (Seen.RequestBodyEnd | Seen.ResponseHeaders))
          return this.protocolError('request_body after the request body ended');
        return this.onRequestBody(msg.requestBody ?? {});
      case 'requestTrailers':
        if (!(this.seen & Seen.RequestHeaders)) return this.protocolError('request_trailers before request_headers');
        this.answer({ requestTrailers: {} });
        return;
      case 'responseHeaders':
        if (!(this.seen & Seen.RequestHeaders)) return this.protocolError('response_headers before request_headers');
        if (this.seen & Seen.ResponseHeaders) return this.protocolError('response_headers received twice');
        this.seen |= Seen.ResponseHeaders;
        return this.onResponseHeaders(msg.responseHeaders ?? {});
      case 'responseBody':
        if (!(this.seen & Seen.ResponseHeaders)) return this.protocolError('response_body before response_headers');
        if (this.seen & Seen.ResponseBodyEnd) return this.protocolError('response_body after end of stream');
        this.onResponseBody(msg.responseBody ?? {});
        return;
      case 'responseTrailers':
        if (!(this.seen & Seen.ResponseHeaders)) return this.protocolError('response_trailers before response_headers');
        this.answer({ responseTrailers: {} });
        this.finish('completed');
        return;
      default:
        return this.protocolError(`unknown ProcessingRequest kind ${String(phase)}`);
    }
  }

  // ---- phases ----

  private onRequestHeaders(h: HttpHeaders): void | Promise<void> {
    const ctx = this.ctx;
    const out = ctx.out;
    out.reset();
    const list = h.headers?.headers ?? [];
    for (let i = 0; i < list.length; i++) {
      const hv = list[i]!;
      const name = hv.key.toLowerCase();
      const value = headerValueOf(hv);
      if (name.startsWith(INTERNAL_HEADER_PREFIX)) {
        // Spoofing guard: a client-supplied x-lmgate-* never reaches a stage or upstream.
        if (!out.removeHeaders.includes(name)) out.removeHeaders.push(name);
        continue;
      }
      switch (name) {
        case ':method':
          ctx.method = value;
          break;
        case ':path':
          ctx.path = value;
          break;
        case ':authority':
          ctx.authority = value;
          break;
        case 'x-request-id':
          ctx.requestId = value;
          break;
      }
      const prev = ctx.headers.get(name);
      ctx.headers.set(name, prev === undefined ? value : `${prev},${value}`);
    }
    if (ctx.requestId === '') ctx.requestId = crypto.randomUUID();
    ctx.hasRequestBody = h.endOfStream !== true;
    ctx.api = classifyPath(ctx.method, ctx.path);
    ctx.setMetadata('request_id', ctx.requestId);
    ctx.setMetadata('api', ctx.api);

    const refusal = this.deps.admission();
    if (refusal) throw refusal;
    const pending = this.pipeline.requestHeaders(ctx);
    if (pending) return pending.then(this.answerRequestHeaders);
    this.answerRequestHeaders();
  }

  private readonly answerRequestHeaders = (): void => {
    this.answer({ requestHeaders: { response: commonResponse(this.ctx.out) } });
    if (!this.ctx.hasRequestBody) this.seen |= Seen.RequestBodyEnd;
  };

  private requestChunks: Buffer[] | undefined;

  private onRequestBody(b: HttpBody): void | Promise<void> {
    const ctx = this.ctx;
    const chunk = asBuffer(b.body);
    this.requestBodyBytes += chunk.length;
    ctx.requestBytes = this.requestBodyBytes;
    if (this.requestBodyBytes > ctx.config.server.maxRequestBodyBytes) {
      throw errors.tooLarge(`Request body exceeds the limit of ${ctx.config.server.maxRequestBodyBytes} bytes.`);
    }
    if (b.endOfStream !== true) {
      // Envoy is configured BUFFERED (one message with the whole body); in STREAMED or
      // BUFFERED_PARTIAL mode chunks arrive separately and are gathered here, each answered
      // without change until the last one, where the stages see the whole body.
      if (this.requestChunks === undefined) this.requestChunks = [];
      this.requestChunks.push(chunk);
      this.answer({ requestBody: {} });
      return;
    }
    this.seen |= Seen.RequestBodyEnd;
    let body = chunk;
    if (this.requestChunks) {
      this.requestChunks.push(chunk);
      body = Buffer.concat(this.requestChunks);
      this.requestChunks = undefined;
    }
    ctx.out.reset();
    const pending = this.pipeline.requestBody(ctx, body);
    if (pending) return pending.then(this.answerRequestBody);
    this.answerRequestBody();
  }

  private readonly answerRequestBody = (): void => {
    const ctx = this.ctx;
    const body = ctx.rewrittenBody;
    // In BUFFERED mode the headers have not left Envoy yet, so the length can still be fixed.
    if (body !== undefined) ctx.out.setHeaders.push(['content-length', String(body.length)]);
    const response = commonResponse(ctx.out);
    if (body !== undefined) response.bodyMutation = { body };
    this.answer({ requestBody: { response } });
  };

  private onResponseHeaders(h: HttpHeaders): void | Promise<void> {
    const ctx = this.ctx;
    if (ctx.hasRequestBody && !(this.seen & Seen.RequestBodyEnd) && ctx.parsed === undefined && this.needsBody()) {
      // The stages never saw the body they govern (Envoy's request_body_mode is not BUFFERED,
      // or the body was cut short): fail closed rather than let an unchecked request through.
      ctx.failure = 'request body was never sent to the gate; set request_body_mode: BUFFERED';
      this.deps.logger.error({ requestId: ctx.requestId }, ctx.failure);
      throw errors.internal();
    }
    const list = h.headers?.headers ?? [];
    for (let i = 0; i < list.length; i++) {
      const hv = list[i]!;
      const name = hv.key.toLowerCase();
      const value = headerValueOf(hv);
      if (name === ':status') ctx.status = Number(value);
      else if (name === 'content-type') ctx.contentType = value;
      ctx.responseHeaders.set(name, value);
    }
    ctx.out.reset();
    const endOfStream = h.endOfStream === true;
    if (endOfStream) this.seen |= Seen.ResponseBodyEnd;
    const pending = this.pipeline.responseHeaders(ctx);
    if (pending) return pending.then(this.answerResponseHeaders);
    this.answerResponseHeaders();
  }

  private needsBody(): boolean {
    return this.ctx.api !== 'unknown' && this.ctx.method === 'POST';
  }

  private readonly answerResponseHeaders = (): void => {
    const ctx = this.ctx;
    const message: ProcessingResponse = { responseHeaders: { response: commonResponse(ctx.out) } };
    const bodyFollows = !(this.seen & Seen.ResponseBodyEnd);
    if (bodyFollows && ctx.responseBodyNeed !== 'NONE') {
      // Read the body only when a stage needs it, and only as much as it needs: each STREAMED
      // chunk costs a gRPC round trip. Requires allow_mode_override: true on the filter.
      message.modeOverride = { responseBodyMode: BodySendMode[ctx.responseBodyNeed] };
      ctx.setMetadata('status', ctx.status);
      this.answer(message);
    } else {
      if (bodyFollows) message.modeOverride = { responseBodyMode: BodySendMode.NONE };
      ctx.setMetadata('status', ctx.status);
      this.finishOutcome();
      this.attachFinalMetadata();
      this.answer(message);
      this.finish(ctx.outcome ?? 'completed');
    }
  };

  private onResponseBody(b: HttpBody): void {
    const ctx = this.ctx;
    const chunk = asBuffer(b.body);
    const endOfStream = b.endOfStream === true;
    ctx.responseChunks++;
    ctx.responseBytes += chunk.length;
    const forward = this.pipeline.responseBody(ctx, chunk, endOfStream);
    const response: CommonResponse = {};
    if (forward !== chunk) response.bodyMutation = forward.length > 0 ? { body: forward } : { clearBody: true };
    const message: ProcessingResponse = { responseBody: { response } };
    if (endOfStream) {
      this.seen |= Seen.ResponseBodyEnd;
      this.finishOutcome();
      this.attachFinalMetadata();
      this.answer(message);
      this.finish(ctx.outcome ?? 'completed');
      return;
    }
    this.answer(message);
  }

  private finishOutcome(): void {
    const ctx = this.ctx;
    if (ctx.outcome) return;
    ctx.outcome = ctx.status !== undefined && ctx.status >= 400 ? 'upstream_error' : 'completed';
  }

  private attachFinalMetadata(): void {
    const ctx = this.ctx;
    ctx.setMetadata('outcome', ctx.outcome);
    ctx.setMetadata('model_served', ctx.modelServed);
    if (ctx.usage) {
      ctx.setMetadata('input_tokens', ctx.usage.inputTokens);
      ctx.setMetadata('output_tokens', ctx.usage.outputTokens);
      ctx.setMetadata('usage', 'upstream');
    } else {
      ctx.setMetadata('usage', 'absent');
    }
  }

  // ---- answers ----

  private answer(message: ProcessingResponse): void {
    // After an ImmediateResponse (a refusal, or the deadline answering 503) Envoy expects
    // nothing more; a stage that completes late must not produce a second answer.
    if (this.answeredImmediately) return;
    const cur = this.current;
    if (cur) {
      this.recordPhaseTime(cur.phase, cur.startNs);
      if (cur.observe) return; // observability_mode: Envoy expects no answer
    }
    if (this.closed) return;
    if (this.ctx.metadataDirty) {
      message.dynamicMetadata = toStruct({ [METADATA_NAMESPACE]: this.ctx.metadata });
      this.ctx.metadataDirty = false;
    }
    this.call.write(message);
  }

  private answerPassThrough(phase: Phase): void {
    const message: ProcessingResponse = {};
    switch (phase) {
      case 'requestHeaders':
        message.requestHeaders = {};
        break;
      case 'requestBody':
        message.requestBody = {};
        break;
      case 'requestTrailers':
        message.requestTrailers = {};
        break;
      case 'responseHeaders':
        message.responseHeaders = {};
        break;
      case 'responseBody':
        message.responseBody = {};
        break;
      case 'responseTrailers':
        message.responseTrailers = {};
        break;
    }
    this.answer(message);
  }

  private recordPhaseTime(phase: Phase, startNs: bigint): void {
    const ns = process.hrtime.bigint() - startNs;
    const g = this.ctx.gateNs;
    switch (phase) {
      case 'requestHeaders':
        g.requestHeaders += ns;
        break;
      case 'requestBody':
        g.requestBody += ns;
        break;
      case 'responseHeaders':
        g.responseHeaders += ns;
        break;
      case 'responseBody':
        g.responseBody += ns;
        break;
      default:
        g.other += ns;
    }
    this.deps.metrics.observePhase(phase, ns);
  }

  /** A stage refused (GateError) or failed (anything else): answer with an ImmediateResponse. */
  private rejectCurrent(err: unknown): void {
    const ctx = this.ctx;
    let gateError: GateError;
    if (err instanceof GateError) {
      gateError = err;
    } else {
      ctx.failure ??= `stage error: ${err instanceof Error ? err.message : String(err)}`;
      this.deps.logger.error({ requestId: ctx.requestId, err }, 'stage failed');
      gateError = errors.internal();
    }
    ctx.error = gateError;
    // A refusal the gate decided (401…429, 503 draining) is 'rejected'; the gate failing to
    // decide (a stage threw, or missed the deadline) is 'error'.
    const failed =
      !(err instanceof GateError) || gateError.code === 'internal_error' || gateError.code === 'gateway_timeout';
    ctx.outcome = failed ? 'error' : 'rejected';
    if (this.current?.observe) {
      // No answer can be given in observability mode; the decision is recorded only.
      this.finish(ctx.outcome);
      return;
    }
    const headers: [string, string][] = [['content-type', 'application/json']];
    for (const h of gateError.headers) headers.push([h[0], h[1]]);
    if (gateError.ruleId !== undefined) headers.push(['x-lmgate-rule', gateError.ruleId]);
    ctx.setMetadata('outcome', ctx.outcome);
    ctx.setMetadata('error_code', gateError.code);
    if (gateError.ruleId !== undefined) ctx.setMetadata('rule_id', gateError.ruleId);
    this.answer({
      immediateResponse: {
        status: { code: gateError.status },
        headers: headerMutation(headers, []),
        body: gateError.body(),
        // Shows up as %RESPONSE_CODE_DETAILS% in Envoy's access log.
        details: `lm_gate_${gateError.code}`,
      },
    });
    this.answeredImmediately = true;
    this.finish(ctx.outcome);
  }

  /** A message Envoy should never send in this state: end the stream with a gRPC error. With
   * failure_mode_allow: false Envoy answers the client 500; nothing unprocessed passes. */
  private protocolError(detail: string): void {
    this.ctx.failure = `protocol: ${detail}`;
    this.deps.logger.warn({ requestId: this.ctx.requestId, detail }, 'ext_proc protocol error');
    this.deps.metrics.protocolErrors.inc();
    this.ctx.outcome ??= 'error';
    this.finish('error');
    if (!this.closed) {
      this.closed = true;
      this.queue.length = 0;
      this.call.emit('error', { code: GrpcStatus.FAILED_PRECONDITION, details: `lm-gate: ${detail}` });
    }
  }

  // ---- end of life ----

  /** Finish exactly once: stages' onEnd, the audit record, metrics. */
  finish(outcome: NonNullable<RequestContext['outcome']>): void {
    if (this.finished) return;
    this.finished = true;
    this.clearDeadline();
    const ctx = this.ctx;
    ctx.outcome ??= outcome;
    // A stream that broke off before its request headers still gets an identifiable record.
    if (ctx.requestId === '') ctx.requestId = crypto.randomUUID();
    try {
      this.pipeline.end(ctx);
    } catch (err) {
      this.deps.logger.error({ requestId: ctx.requestId, err }, 'stage onEnd failed');
    }
    this.deps.audit.write(buildAuditRecord(ctx));
    this.deps.metrics.observeRequest(ctx);
    this.deps.metrics.streamsActive.dec();
    this.deps.onFinished(this);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.call.end();
  }

  /** Drain deadline passed: record the request as cancelled and cut the stream. */
  abort(reason: string): void {
    this.ctx.failure ??= reason;
    this.finish('cancelled');
    if (!this.closed) {
      this.closed = true;
      this.call.emit('error', { code: GrpcStatus.UNAVAILABLE, details: `lm-gate: ${reason}` });
    }
  }

  get isFinished(): boolean {
    return this.finished;
  }
}

/** The header mutation and route-cache flag the stages asked for in this phase. */
function commonResponse(out: PhaseOutput): CommonResponse {
  const response: CommonResponse = {};
  if (out.setHeaders.length > 0 || out.removeHeaders.length > 0)
    response.headerMutation = headerMutation(out.setHeaders, out.removeHeaders);
  if (out.clearRouteCache) response.clearRouteCache = true;
  return response;
}

/** protobufjs decodes bytes to a Buffer slice, but an absent field reads as its default (an
 * empty plain array), which is how Envoy's final STREAMED chunk often arrives. */
function asBuffer(b: Uint8Array | undefined): Buffer {
  if (b === undefined || b.length === 0) return EMPTY;
  if (Buffer.isBuffer(b)) return b;
  return b instanceof Uint8Array
    ? Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    : Buffer.from(b as ArrayLike<number>);
}
const EMPTY = Buffer.alloc(0);
