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
//   onEnd, one audit record, metrics;
// - no request body byte reaches upstream before the stages judged the whole body, in every
//   request_body_mode (see onRequestBody), and a body mode the gate cannot govern is refused;
// - Envoy's own local replies (413, 408, 400) pass with their status and are audited as such;
// - the audit's status is what the client saw.
//
// Reference: envoy/source/extensions/filters/http/ext_proc/{ext_proc.cc,processor_state.cc}.

import { captureLine } from '../audit/capture-stage.ts';
import { buildAuditRecord } from '../audit/record.ts';
import type { AuditSink } from '../audit/sink.ts';
import type { Config } from '../config/schema.ts';
import { applyBodyEdits } from '../llm/body-edits.ts';
import { openResponseReader, type ResponseReader } from '../llm/response-reader.ts';
import type { ResponseEvent, Uninspectable } from '../llm/response-stream.ts';
import { classifyPath } from '../llm/shapes.ts';
import { type AbortReason, type Outcome, RequestContext } from '../pipeline/context.ts';
import { GateError, internalError, refuse } from '../pipeline/errors.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { asBuffer, commonResponse, immediateResponseFor } from './answers.ts';
import { readPeerFacts } from './attributes.ts';
import { bodyModeName, type FilterConfigWatch } from './filter-config.ts';
import { type CallListener, GrpcStatus, type ServerCall } from './h2-grpc.ts';
import {
  BodySendMode,
  type CommonResponse,
  HeaderSendMode,
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
  readonly filterConfig: FilterConfigWatch;
  onFinished(stream: ProcessStream): void;
}

export const METADATA_NAMESPACE = 'lm_gate';
const EMPTY = Buffer.alloc(0);

type Call = ServerCall<ProcessingRequest, ProcessingResponse>;

/** Bits of ProcessStream.seen: which phases have arrived. */
const Seen = { RequestHeaders: 1, RequestBodyEnd: 2, ResponseHeaders: 4, ResponseBodyEnd: 8 } as const;

/** Finished streams whose onEnd and record wait for the next immediate (finish). */
let finishing: ProcessStream[] = [];

/** Streams with response events to decode after their chunk's answer (flushResponseEvents). */
let decoding: ProcessStream[] = [];

function decodeDeferredEvents(): void {
  const streams = decoding;
  decoding = [];
  for (let i = 0; i < streams.length; i++) streams[i]!.flushResponseEvents();
}

function recordFinished(): void {
  const streams = finishing;
  finishing = [];
  for (let i = 0; i < streams.length; i++) streams[i]!.endAndRecord();
}

/** One ext_proc stream: one request's messages, answered in order. Its handlers are methods,
 * not per-instance arrow functions: a request lives through its upstream call, and every closure
 * made for it would be copied by each scavenge meanwhile. A closure is made only where a
 * callback is needed (an async stage, a timer), and lives only as long as that. */
export class ProcessStream implements CallListener<ProcessingRequest> {
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
  /** Envoy's request_body_mode for this stream: from protocol_config; without it (Envoy before
   * 1.34) BUFFERED, the mode the gate requires, or STREAMED in observability mode, the only
   * mode Envoy sends bodies in there. */
  private requestBodyMode: number = BodySendMode.BUFFERED;
  /** The response body's reader, when a stage asked for one. */
  private responseReader: ResponseReader | undefined;
  /** STREAMED request chunks held back (each answered with an empty body) until the last. */
  private requestChunks: Buffer[] | undefined;
  /** The whole request body the stages judged, until its answer applies their edits. */
  private judgedBody: Buffer | undefined;
  /** The response body mode in force: the one the gate asked for with mode_override, or under a
   * FULL_DUPLEX_STREAMED request mode (where Envoy ignores mode_override) the configured one. */
  private responseBodyMode: number = BodySendMode.NONE;
  /** The filter's configured response_body_mode (protocol_config). */
  private configuredResponseBodyMode: number = BodySendMode.NONE;
  /** A response body a stage needs whole (BUFFERED) arriving STREAMED, because Envoy ignores
   * mode_override under a FULL_DUPLEX_STREAMED request mode: its chunks, held (answered empty)
   * until the last, which carries the whole body, judged and possibly rewritten. */
  private responseHeld: { chunks: Buffer[]; bytes: number } | undefined;
  /** The response body message being handled ends the body (end_of_stream, or BUFFERED). */
  private responseBodyEnds = false;
  /** FULL_DUPLEX_STREAMED: request trailers ended the held body (answered after it). */
  private requestTrailersFollow = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The phase whose async hooks are still running, if any; finish() lets it settle before the
   * stages' onEnd and the audit record. */
  private running: Promise<void> | undefined;
  private deadlineExpired = false;
  private current: { phase: Phase; startNs: bigint; observe: boolean } | undefined;
  /** When a large message announced itself (onArriving), performance.now(): Envoy was asked
   * then to wait the slow path's time for it, so its deadline counts from then. 0: none. */
  private arrivingSince = 0;
  /** The announced message, once whole (the next one the call delivers after the notice). */
  private arrived: ProcessingRequest | undefined;
  /** The last answer, held until the audit record is durable (audit.durability strict). */
  private afterRecord: (() => void) | undefined;

  constructor(call: Call, deps: StreamDeps) {
    this.call = call;
    this.deps = deps;
    const rt = deps.runtime();
    this.pipeline = rt.pipeline;
    this.ctx = new RequestContext(rt.config);
    this.ctx.slowPath = this;
    deps.metrics.streamsActive.inc();
    call.listen(this);
  }

  // ---- gRPC stream events (CallListener) ----

  onMessage(msg: ProcessingRequest): void {
    if (this.closed) return;
    if (this.arrivingSince !== 0 && this.arrived === undefined) this.arrived = msg;
    this.queue.push(msg);
    this.pump();
  }

  /** A large message is on its way (its first bytes are in). Envoy's timer for it started when
   * Envoy sent it, and the rest may be queued behind other requests' bodies on the connection:
   * ask Envoy now for the slow path's time, rather than once it is whole and perhaps too late
   * (Envoy's 504 instead of the gate's answer). It will be parsed off the loop anyway. */
  onArriving(): void {
    if (this.closed || this.answeredImmediately || this.arrivingSince !== 0) return;
    // Only when it is the one message Envoy awaits an answer for: with another one pending,
    // the override would extend that one's timer (Envoy takes one per call) instead.
    if (this.busy || this.queue.length > 0) return;
    // No message timer to extend: FULL_DUPLEX_STREAMED bodies and observability mode.
    if (
      this.requestBodyMode === BodySendMode.FULL_DUPLEX_STREAMED ||
      this.responseBodyMode === BodySendMode.FULL_DUPLEX_STREAMED ||
      this.current === undefined ||
      this.current.observe
    )
      return;
    const server = this.ctx.config.server;
    if (server.maxMessageDeadlineMs <= server.messageDeadlineMs) return;
    this.arrivingSince = performance.now();
    this.askEnvoyToWait(server.maxMessageDeadlineMs);
  }

  /** Envoy half-closed: the HTTP stream is over on its side. */
  onEnd(): void {
    if (!this.finished) {
      // Envoy stops sending before the phases we expected: the downstream client or the
      // upstream went away mid-request, or Envoy's own timeout fired.
      this.ctx.failure ??= `envoy closed the stream before the request completed${this.pendingAnswer()}`;
      this.finish('cancelled', 'cancelled');
    }
    this.close();
  }

  onCancelled(): void {
    this.ctx.failure ??= `envoy cancelled the stream${this.pendingAnswer()}`;
    this.closed = true;
    this.finish('cancelled', 'cancelled');
  }

  onError(err: Error): void {
    this.deps.logger.debug({ requestId: this.ctx.requestId, err: err.message }, 'ext_proc stream error');
    this.closed = true;
    this.ctx.failure ??= `stream error: ${err.message}`;
    this.finish('cancelled', 'cancelled');
  }

  /** What Envoy was waiting for from the gate when it ended the stream, for the record: with a
   * message unanswered, Envoy's message_timeout is the likely end (its 504 to the client under
   * failure_mode_allow: false), though a client going away looks the same from here. */
  private pendingAnswer(): string {
    const cur = this.current;
    if (this.busy && cur !== undefined && !cur.observe && this.afterRecord === undefined) {
      const ms = Number(process.hrtime.bigint() - cur.startNs) / 1e6;
      return `, while its ${cur.phase} awaited the gate's answer (${Math.round(ms)} ms): Envoy's message_timeout, or the client went away`;
    }
    const next = this.queue[0]?.request;
    if (next !== undefined)
      return `, while its ${next} awaited the gate's answer: Envoy's message_timeout, or the client went away`;
    if (this.arrivingSince !== 0)
      return `, while a message was still arriving (its first bytes ${Math.round(performance.now() - this.arrivingSince)} ms before): Envoy's message_timeout, or the client went away`;
    return '';
  }

  private resume(): void {
    this.running = undefined;
    this.clearDeadline();
    // A last answer held for the audit record keeps later messages waiting.
    this.busy = this.afterRecord !== undefined;
    this.pump();
  }

  private fail(err: unknown): void {
    this.running = undefined;
    this.clearDeadline();
    // A last answer held for the audit record keeps later messages waiting.
    this.busy = this.afterRecord !== undefined;
    // A hook that fails after the request was finished (overtaken by the deadline, or aborted by
    // a cancel) changes nothing: its request already has its answer and outcome.
    if (!this.deadlineExpired && !this.finished) this.rejectCurrent(err);
    this.pump();
  }

  /** A phase's continuation after its async hooks: skipped once the request is finished, so a
   * late stage cannot answer twice or change what the audit records as the client's view. */
  private whenSettled(pending: Promise<void>, answer: (this: ProcessStream) => void): Promise<void> {
    return pending.then(() => {
      if (!this.finished) answer.call(this);
    });
  }

  private onDeadline(): void {
    this.deadlineTimer = undefined;
    this.deadlineExpired = true;
    this.ctx.failure = `a stage did not answer ${this.current?.phase} within ${this.ctx.config.server.messageDeadlineMs} ms`;
    this.deps.logger.warn({ requestId: this.ctx.requestId, phase: this.current?.phase }, 'message deadline exceeded');
    this.ctx.abort('deadline');
    this.rejectCurrent(refuse('gateway_timeout', 'The gateway could not decide in time; retry the request.'));
    // The late stage result is dropped; the stream is finished and answers nothing more.
    this.busy = this.afterRecord !== undefined;
    this.queue.length = 0;
  }

  // ---- message loop ----

  private pump(): void {
    while (!this.busy && this.queue.length > 0 && !this.closed) {
      const msg = this.queue.shift()!;
      // The message onArriving announced: Envoy was asked to wait from its first bytes on.
      let announcedAt = 0;
      if (msg === this.arrived) {
        announcedAt = this.arrivingSince;
        this.arrived = undefined;
        this.arrivingSince = 0;
      }
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
        const server = this.ctx.config.server;
        let deadlineMs = server.messageDeadlineMs;
        if (announcedAt !== 0) {
          // The deadline counts from the same instant as Envoy's extended timer, so that it
          // still answers first; the message is on the slow path already (no second ask).
          deadlineMs = Math.round(announcedAt + server.maxMessageDeadlineMs - performance.now());
          this.ctx.out.slow = true;
        } else if (this.ctx.out.slow && deadlineMs < server.maxMessageDeadlineMs) {
          deadlineMs = server.maxMessageDeadlineMs;
          this.askEnvoyToWait(deadlineMs);
        }
        this.running = pending;
        pending.then(
          () => this.resume(),
          (err: unknown) => this.fail(err),
        );
        // A message whose last bytes came after its deadline: the time Envoy was asked for is
        // over, so it is answered now, not raced against its stages.
        if (deadlineMs <= 0) this.onDeadline();
        else this.deadlineTimer = setTimeout(() => this.onDeadline(), deadlineMs);
      }
    }
  }

  /** ctx.takeLonger: the message being decided moves to the slow path's deadline. Called during
   * handle() (before the pump has set a deadline), the flag alone does it. */
  takeLonger(): void {
    const out = this.ctx.out;
    if (out.slow) return;
    out.slow = true;
    const server = this.ctx.config.server;
    if (!this.busy || this.deadlineTimer === undefined || server.maxMessageDeadlineMs <= server.messageDeadlineMs)
      return;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.onDeadline(), server.maxMessageDeadlineMs);
    this.askEnvoyToWait(server.maxMessageDeadlineMs);
  }

  /** override_message_timeout: Envoy waits up to ms (if within its max_message_timeout) for
   * this message's answer. The real answer still follows. */
  private askEnvoyToWait(ms: number): void {
    if (this.closed || this.current?.observe) return;
    // The deadline answers first: Envoy is asked for a little more than the gate will take.
    const envoyMs = ms + 50;
    this.call.write({
      overrideMessageTimeout: { seconds: Math.floor(envoyMs / 1000), nanos: (envoyMs % 1000) * 1_000_000 },
    });
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
    const pc = msg.protocolConfig;
    if (pc) {
      this.requestBodyMode = pc.requestBodyMode ?? BodySendMode.NONE;
      this.configuredResponseBodyMode = pc.responseBodyMode ?? BodySendMode.NONE;
      this.deps.filterConfig.check(pc);
    } else if (observe) {
      this.requestBodyMode = BodySendMode.STREAMED;
    }

    if (this.answeredImmediately) {
      // Envoy closes the stream after an ImmediateResponse; anything that still arrives is
      // answered nothing (Envoy no longer reads) and ignored.
      return;
    }
    if (this.finished) {
      // Already audited (for instance the response body was not needed, but Envoy was
      // configured to send it anyway): answer pass-through so Envoy is never left waiting.
      // A request body chunk is the exception: once the request is decided (an early response
      // in STREAMED mode), what is left of its body is dropped, never forwarded unjudged.
      if (phase === 'requestBody') this.answer({ requestBody: { response: { bodyMutation: { clearBody: true } } } });
      else this.answerPassThrough(phase);
      return;
    }

    switch (phase) {
      case 'requestHeaders':
        if (this.seen & Seen.RequestHeaders) return this.protocolError('request_headers received twice');
        this.seen |= Seen.RequestHeaders;
        return this.onRequestHeaders(msg.requestHeaders ?? {}, msg.attributes);
      case 'requestBody':
        if (!(this.seen & Seen.RequestHeaders)) return this.protocolError('request_body before request_headers');
        if (this.seen & (Seen.RequestBodyEnd | Seen.ResponseHeaders))
          return this.protocolError('request_body after the request body ended');
        return this.onRequestBody(msg.requestBody ?? {});
      case 'requestTrailers':
        if (!(this.seen & Seen.RequestHeaders)) return this.protocolError('request_trailers before request_headers');
        return this.onRequestTrailers();
      case 'responseHeaders':
        if (this.seen & Seen.ResponseHeaders) return this.protocolError('response_headers received twice');
        this.seen |= Seen.ResponseHeaders;
        return this.onResponseHeaders(msg.responseHeaders ?? {});
      case 'responseBody':
        if (!(this.seen & Seen.ResponseHeaders)) return this.protocolError('response_body before response_headers');
        if (this.seen & Seen.ResponseBodyEnd) return this.protocolError('response_body after end of stream');
        return this.onResponseBody(msg.responseBody ?? {});
      case 'responseTrailers':
        if (!(this.seen & Seen.ResponseHeaders)) return this.protocolError('response_trailers before response_headers');
        return this.onResponseTrailers();
      default:
        return this.protocolError(`unknown ProcessingRequest kind ${String(phase)}`);
    }
  }

  // ---- phases ----

  private onRequestHeaders(h: HttpHeaders, attributes: ProcessingRequest['attributes']): void | Promise<void> {
    const ctx = this.ctx;
    ctx.out.reset();
    const list = h.headers?.headers ?? [];
    for (let i = 0; i < list.length; i++) {
      const hv = list[i]!;
      const name = hv.key.toLowerCase();
      const value = headerValueOf(hv);
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
    // Request attributes come with the request headers message only, once per request.
    ctx.peer = readPeerFacts(attributes);
    ctx.setMetadata('request_id', ctx.requestId);
    ctx.setMetadata('api', ctx.api);

    const refusal = this.deps.admission();
    if (refusal) throw refusal;
    if (ctx.hasRequestBody) this.checkRequestBodyUpFront();
    const pending = this.pipeline.requestHeaders(ctx);
    if (pending) return this.whenSettled(pending, this.afterRequestHeaders);
    this.afterRequestHeaders();
  }

  /** FULL_DUPLEX_STREAMED request mode: Envoy sends the body without waiting for the headers'
   * answer, and holds the headers until it comes. A body the stages read is judged before the
   * headers are answered, so a header or route chosen from it still applies, and both answers
   * leave together: one round trip for the request instead of two. */
  private get duplex(): boolean {
    return this.requestBodyMode === BodySendMode.FULL_DUPLEX_STREAMED;
  }

  private afterRequestHeaders(): void {
    if (this.duplex && this.ctx.hasRequestBody && this.needsBody()) return;
    this.answerRequestHeaders();
  }

  private answerRequestHeaders(): void {
    this.answer({ requestHeaders: { response: commonResponse(this.ctx.out) } });
    if (!this.ctx.hasRequestBody) {
      this.seen |= Seen.RequestBodyEnd;
      this.ctx.requestReleasedNs = process.hrtime.bigint();
    }
  }

  /** Refusals that need no body byte: a declared length over the limit (the client is not
   * made to upload it first), and a body mode in which the body could not be judged. */
  private checkRequestBodyUpFront(): void {
    const ctx = this.ctx;
    const max = ctx.config.server.maxRequestBodyBytes;
    const declared = ctx.headers.get('content-length');
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > max) {
      ctx.requestBytes = Number(declared);
      throw refuse('request_too_large', `Request body exceeds the limit of ${max} bytes.`);
    }
    if (!this.needsBody()) return;
    const mode = this.requestBodyMode;
    if (mode === BodySendMode.NONE) {
      if (this.current?.observe) return; // nothing is enforced in observability mode
      ctx.failure =
        "Envoy's request_body_mode is NONE: the gate cannot judge the body; set request_body_mode: BUFFERED";
      throw internalError('The gateway is misconfigured and cannot check this request.');
    }
  }

  /** Bodies are judged whole, and nothing of one goes upstream before it is judged:
   * - BUFFERED: one message is the whole body, also when end_of_stream is false (request
   *   trailers follow it);
   * - STREAMED: every chunk is held (answered with an empty body) and the whole judged body,
   *   possibly rewritten, replaces the last one;
   * - BUFFERED_PARTIAL: a message with end_of_stream is the whole body; one without it is a
   *   body over Envoy's buffer (whose remainder Envoy would forward unprocessed) or one followed
   *   by trailers, and is refused with 413 before anything goes upstream. */
  private onRequestBody(b: HttpBody): void | Promise<void> {
    const ctx = this.ctx;
    const chunk = asBuffer(b.body);
    this.requestBodyBytes += chunk.length;
    ctx.requestBytes = this.requestBodyBytes;
    if (this.requestBodyBytes > ctx.config.server.maxRequestBodyBytes) {
      throw refuse(
        'request_too_large',
        `Request body exceeds the limit of ${ctx.config.server.maxRequestBodyBytes} bytes.`,
      );
    }
    const mode = this.requestBodyMode;
    const last = b.endOfStream === true;
    if (mode === BodySendMode.BUFFERED) return this.judgeRequestBody(chunk);
    if (mode === BodySendMode.FULL_DUPLEX_STREAMED) return this.onDuplexRequestBody(chunk, last);
    if (mode === BodySendMode.BUFFERED_PARTIAL && !last && this.needsBody()) {
      throw refuse(
        'request_too_large',
        'The request body is larger than the proxy buffers, or is followed by trailers; send it whole, without trailers.',
      );
    }
    if (!this.needsBody()) {
      // No stage reads this body (not an LLM call): it streams through as it comes.
      if (last) this.seen |= Seen.RequestBodyEnd;
      this.answer({ requestBody: {} });
      return;
    }
    if (!last) {
      if (this.requestChunks === undefined) this.requestChunks = [];
      this.requestChunks.push(chunk);
      this.answer({ requestBody: chunk.length > 0 ? { response: { bodyMutation: { clearBody: true } } } : {} });
      return;
    }
    let body = chunk;
    if (this.requestChunks !== undefined) {
      this.requestChunks.push(chunk);
      body = Buffer.concat(this.requestChunks);
    }
    return this.judgeRequestBody(body);
  }

  /** FULL_DUPLEX_STREAMED: Envoy forwards only the body the gate sends back, and expects no
   * answer per message. A body no stage reads goes back chunk by chunk as it came; one the
   * stages read is held whole, judged, and released with the headers' answer. */
  private onDuplexRequestBody(chunk: Buffer, last: boolean): void | Promise<void> {
    if (!this.needsBody()) {
      if (last) this.seen |= Seen.RequestBodyEnd;
      this.answer({
        requestBody: { response: { bodyMutation: { streamedResponse: { body: chunk, endOfStream: last } } } },
      });
      return;
    }
    if (!last) {
      if (this.requestChunks === undefined) this.requestChunks = [];
      this.requestChunks.push(chunk);
      return;
    }
    let body = chunk;
    if (this.requestChunks !== undefined) {
      this.requestChunks.push(chunk);
      body = Buffer.concat(this.requestChunks);
      this.requestChunks = undefined;
    }
    return this.judgeRequestBody(body);
  }

  private judgeRequestBody(body: Buffer): void | Promise<void> {
    const ctx = this.ctx;
    this.seen |= Seen.RequestBodyEnd;
    // FULL_DUPLEX: the headers' stages' mutations are still unanswered; they go out together.
    if (!this.duplex) ctx.out.reset();
    this.judgedBody = body;
    const pending = this.pipeline.requestBody(ctx, body);
    if (pending) return this.whenSettled(pending, this.answerRequestBody);
    this.answerRequestBody();
  }

  private answerRequestBody(): void {
    const ctx = this.ctx;
    if (this.duplex) {
      this.answerDuplexRequest();
      return;
    }
    const headersHeld =
      this.requestBodyMode === BodySendMode.BUFFERED || this.requestBodyMode === BodySendMode.BUFFERED_PARTIAL;
    if (!headersHeld && (ctx.out.clearRouteCache || ctx.out.setHeaders.length > 0)) {
      // STREAMED: Envoy sent the headers on after their answer, so a route or a header chosen
      // from the body (routing, an upstream credential) can no longer apply. Sending the body
      // anyway would take it to the wrong cluster, with the wrong credential.
      ctx.failure = 'a stage chose request headers or the route from the body, which needs request_body_mode BUFFERED';
      throw internalError();
    }
    let body = ctx.rewrittenBody;
    const judged = this.judgedBody;
    this.judgedBody = undefined;
    if (ctx.requestBodyEdits !== undefined && judged !== undefined)
      body = applyBodyEdits(body ?? judged, ctx.requestBodyEdits);
    const held = this.requestChunks;
    this.requestChunks = undefined;
    if (headersHeld) {
      // The headers have not left Envoy yet, so the length can still be fixed (Envoy refuses a
      // body mutation that contradicts a content-length it still holds).
      if (body !== undefined) ctx.out.setHeaders.push(['content-length', String(body.length)]);
    } else if (body === undefined && held !== undefined) {
      // STREAMED: earlier chunks were answered empty; the last carries the whole body.
      body = Buffer.concat(held);
    }
    const response = commonResponse(ctx.out);
    if (body !== undefined) response.bodyMutation = body.length > 0 ? { body } : { clearBody: true };
    this.answer({ requestBody: { response } });
    ctx.requestReleasedNs = process.hrtime.bigint();
  }

  /** FULL_DUPLEX_STREAMED: the headers' answer (every mutation the stages chose, from the headers
   * and the body) and then the judged, possibly rewritten, body as one streamed response. Envoy
   * drops the request's content-length in this mode, so none is set. */
  private answerDuplexRequest(): void {
    const ctx = this.ctx;
    const judged = this.judgedBody ?? EMPTY;
    this.judgedBody = undefined;
    let body = ctx.rewrittenBody ?? judged;
    if (ctx.requestBodyEdits !== undefined) body = applyBodyEdits(body, ctx.requestBodyEdits);
    const trailers = this.requestTrailersFollow;
    this.answer({ requestHeaders: { response: commonResponse(ctx.out) } }, false);
    this.answer(
      { requestBody: { response: { bodyMutation: { streamedResponse: { body, endOfStream: !trailers } } } } },
      !trailers,
    );
    if (trailers) this.answer({ requestTrailers: {} });
    ctx.requestReleasedNs = process.hrtime.bigint();
  }

  /** Request trailers (request_trailer_mode: SEND). After a BUFFERED body they change nothing.
   * In STREAMED mode they end a body whose last message did not say so: the held body could
   * only be released with a body message, so the request is refused rather than sent empty. */
  private onRequestTrailers(): void | Promise<void> {
    if (this.duplex && this.ctx.hasRequestBody && !(this.seen & Seen.RequestBodyEnd) && this.needsBody()) {
      // FULL_DUPLEX_STREAMED: the trailers end the held body; it is judged now and released
      // before the trailers' answer (its last chunk without end_of_stream: the trailers follow).
      this.requestTrailersFollow = true;
      const held = this.requestChunks ?? [];
      this.requestChunks = undefined;
      return this.judgeRequestBody(held.length === 1 ? held[0]! : Buffer.concat(held));
    }
    if (this.ctx.hasRequestBody && !(this.seen & Seen.RequestBodyEnd) && this.needsBody()) {
      this.ctx.failure = 'request trailers ended a STREAMED body the gate was holding';
      throw refuse(
        'unsupported_trailers',
        'Request trailers are not supported on this endpoint; send the body without trailers.',
      );
    }
    this.answer({ requestTrailers: {} });
  }

  private onResponseHeaders(h: HttpHeaders): void | Promise<void> {
    const ctx = this.ctx;
    ctx.responseHeadersNs = process.hrtime.bigint();
    const list = h.headers?.headers ?? [];
    for (let i = 0; i < list.length; i++) {
      const hv = list[i]!;
      const name = hv.key.toLowerCase();
      const value = headerValueOf(hv);
      // A name sent twice reads as both values joined, as for request headers: read as the last
      // one, `content-encoding: gzip` then `identity` was a compressed body taken for plain text.
      const prev = ctx.responseHeaders.get(name);
      const joined = prev === undefined ? value : `${prev},${value}`;
      if (name === ':status') ctx.status = Number(value);
      else if (name === 'content-type') ctx.contentType = joined;
      ctx.responseHeaders.set(name, joined);
    }
    ctx.out.reset();
    const endOfStream = h.endOfStream === true;
    if (endOfStream) this.seen |= Seen.ResponseBodyEnd;
    if (!(this.seen & Seen.RequestHeaders) || (this.needsBody() && !(this.seen & Seen.RequestBodyEnd))) {
      return this.onEarlyResponse();
    }
    const pending = this.pipeline.responseHeaders(ctx);
    if (pending) return this.whenSettled(pending, this.answerResponseHeaders);
    this.answerResponseHeaders();
  }

  /** Response headers before the stages judged the request: Envoy answering the client itself
   * (its 413 over the buffer limit, 408 for a stalled upload, 400 for a malformed request, which
   * may come before any request headers), or in STREAMED mode an upstream answering early while
   * the gate still held the body. Nothing unjudged went upstream, so the answer passes with its
   * own status and is audited as what it is. A success answer, though, means upstream served a
   * body the gate never saw (request_body_mode NONE on an Envoy that does not say so): that
   * fails closed. */
  private onEarlyResponse(): void {
    const ctx = this.ctx;
    const status = ctx.status ?? 0;
    const observe = this.current?.observe === true;
    // Before any request headers nothing can have gone upstream through this filter (it sits
    // before the router): a reply from Envoy or an earlier filter (a CORS preflight's 200).
    const sawRequest = (this.seen & Seen.RequestHeaders) !== 0;
    if (status < 400 && !observe && sawRequest) {
      ctx.failure = 'upstream answered a request whose body the gate never saw; set request_body_mode: BUFFERED';
      this.deps.logger.error({ requestId: ctx.requestId }, ctx.failure);
      throw internalError();
    }
    let outcome: Outcome;
    if (observe) {
      // Observability mode never enforced anything; the record says what was not observed.
      ctx.failure ??= 'request body not observed: in observability_mode Envoy sends only STREAMED bodies';
      outcome = status >= 400 ? 'upstream_error' : 'completed';
    } else if (
      sawRequest &&
      (this.requestBodyMode === BodySendMode.STREAMED || this.requestBodyMode === BodySendMode.BUFFERED_PARTIAL)
    ) {
      ctx.failure ??= `upstream answered ${status} before the request body was complete`;
      outcome = 'upstream_error';
    } else {
      ctx.failure ??= sawRequest
        ? `Envoy answered ${status} before the request body reached the gate`
        : `Envoy answered ${status} before sending the request to the gate`;
      outcome = 'local_reply';
    }
    ctx.outcome = outcome;
    ctx.responseStarted = true;
    const message: ProcessingResponse = { responseHeaders: {} };
    if (!(this.seen & Seen.ResponseBodyEnd)) message.modeOverride = { responseBodyMode: BodySendMode.NONE };
    ctx.setMetadata('status', ctx.status);
    this.attachFinalMetadata();
    this.answerLast(message, outcome);
  }

  private needsBody(): boolean {
    return this.ctx.bodyFollows;
  }

  private answerResponseHeaders(): void {
    const ctx = this.ctx;
    if (ctx.responseReading !== undefined && !(this.seen & Seen.ResponseBodyEnd)) this.openResponseReader();
    // A body a stage may rewrite cannot keep upstream's length (Envoy drops it only for modes
    // configured up front, not for a mode_override): the client gets it chunked instead.
    if (ctx.responseBodyRewritten && ctx.responseBodyNeed === 'STREAMED' && ctx.responseHeaders.has('content-length'))
      ctx.out.removeHeaders.push('content-length');
    const message: ProcessingResponse = { responseHeaders: { response: commonResponse(ctx.out) } };
    const bodyFollows = !(this.seen & Seen.ResponseBodyEnd);
    let reads = bodyFollows && ctx.responseBodyNeed !== 'NONE';
    if (
      reads &&
      this.duplex &&
      this.configuredResponseBodyMode !== BodySendMode.STREAMED &&
      this.configuredResponseBodyMode !== BodySendMode.BUFFERED
    ) {
      // The body will not come (FilterConfigWatch reports the setting): the request is not left
      // waiting for it, and the record says what was not read.
      ctx.failure ??= `response not read: Envoy ignores mode_override under request_body_mode FULL_DUPLEX_STREAMED, and response_body_mode ${bodyModeName(this.configuredResponseBodyMode)} sends no body the gate can read`;
      reads = false;
    }
    if (reads) {
      // Read the body only when a stage needs it, and only as much as it needs: each STREAMED
      // chunk costs a gRPC round trip. Requires allow_mode_override: true on the filter.
      // Trailers are asked for too: with upstream trailers the last body message does not
      // carry end_of_stream, and only the trailers say the response is complete.
      if (this.duplex) {
        // Envoy ignores mode_override under a FULL_DUPLEX_STREAMED request mode: the body comes
        // as configured (STREAMED; FilterConfigWatch reports any other mode).
        this.responseBodyMode = this.configuredResponseBodyMode;
        if (ctx.responseBodyNeed === 'BUFFERED' && this.responseBodyMode === BodySendMode.STREAMED)
          this.responseHeld = { chunks: [], bytes: 0 };
      } else {
        this.responseBodyMode = BodySendMode[ctx.responseBodyNeed];
        message.modeOverride = { responseBodyMode: this.responseBodyMode, responseTrailerMode: HeaderSendMode.SEND };
      }
      // STREAMED: the headers leave now, before the body.
      if (this.responseBodyMode !== BodySendMode.BUFFERED) ctx.responseStarted = true;
      ctx.setMetadata('status', ctx.status);
      this.answer(message);
    } else {
      if (bodyFollows) message.modeOverride = { responseBodyMode: BodySendMode.NONE };
      ctx.responseStarted = true;
      ctx.setMetadata('status', ctx.status);
      this.finishOutcome();
      this.attachFinalMetadata();
      this.answerLast(message, ctx.outcome ?? 'completed');
    }
  }

  /** The one reader of this response's body, for every stage that asked (readResponseBody). */
  private openResponseReader(): void {
    const ctx = this.ctx;
    const opened = openResponseReader(
      {
        api: ctx.api,
        status: ctx.status,
        headers: ctx.responseHeaders,
        maxBufferedBytes: ctx.config.server.maxBufferedResponseBytes,
      },
      ctx.responseReading!,
      (event) => this.onResponseEvent(event),
      (why) => this.onUninspectableEvent(why),
    );
    if (opened === undefined) return;
    if ('skipped' in opened) {
      ctx.failure ??= `response not read: ${opened.skipped}`;
      return;
    }
    this.responseReader = opened.reader;
    ctx.needResponseBody(opened.mode);
    if (opened.rewrites) ctx.responseBodyRewritten = true;
  }

  private onResponseEvent(event: ResponseEvent): void {
    const ctx = this.ctx;
    this.pipeline.responseEvent(ctx, event);
    const err = ctx.streamError;
    if (err === undefined) return;
    this.responseReader?.stream?.endWithError({
      message: err.message,
      type: err.type,
      code: err.code,
      param: err.param,
    });
  }

  /** An event too large to decode, or whose data is not a JSON object, while stages read events:
   * they cannot judge it, so the stream ends here (fail closed) instead of passing it on unread. */
  private onUninspectableEvent(why: Uninspectable): void {
    const ctx = this.ctx;
    ctx.endResponseStream(
      why === 'too_large'
        ? refuse('content_blocked', 'The response could not be checked: one of its events is too large.', {
            ruleId: 'llm.response_event_too_large',
          })
        : refuse('content_blocked', 'The response could not be checked: one of its events is not a JSON object.', {
            ruleId: 'llm.response_event_unreadable',
          }),
    );
    const err = ctx.streamError!;
    this.responseReader?.stream?.endWithError({
      message: err.message,
      type: err.type,
      code: err.code,
      param: err.param,
    });
  }

  private onResponseBody(b: HttpBody): void | Promise<void> {
    const ctx = this.ctx;
    ctx.out.reset();
    let chunk = asBuffer(b.body);
    // A BUFFERED body message is the whole body, also when trailers follow it (end_of_stream
    // false); a STREAMED one ends with end_of_stream or, failing that, with the trailers.
    let endOfStream = b.endOfStream === true || this.responseBodyMode === BodySendMode.BUFFERED;
    this.responseBodyEnds = endOfStream;
    ctx.responseChunks++;
    ctx.responseBytes += chunk.length;
    const held = this.responseHeld;
    if (held !== undefined) {
      held.chunks.push(chunk);
      held.bytes += chunk.length;
      if (held.bytes > ctx.config.server.maxBufferedResponseBytes) {
        ctx.failure = `response body over server.maxBufferedResponseBytes (${ctx.config.server.maxBufferedResponseBytes}) while a stage needed it whole`;
        throw internalError();
      }
      if (!endOfStream) {
        this.answer({ responseBody: chunk.length > 0 ? { response: { bodyMutation: { clearBody: true } } } : {} });
        return;
      }
      this.responseHeld = undefined;
      // Every earlier chunk was answered empty: the last answer carries the whole body.
      chunk = held.chunks.length === 1 ? chunk : Buffer.concat(held.chunks, held.bytes);
      endOfStream = true;
      if (held.chunks.length > 1) return this.judgeResponseBody(chunk, true, true);
    }
    return this.judgeResponseBody(chunk, endOfStream);
  }

  /** `whole`: the chunk is a held body whose earlier chunks went out empty, so the answer must
   * carry it even when no stage changed it. */
  private judgeResponseBody(chunk: Buffer, endOfStream: boolean, whole = false): void | Promise<void> {
    const ctx = this.ctx;
    let forward = chunk;
    const reader = this.responseReader;
    if (reader !== undefined) {
      forward = reader.push(chunk, endOfStream);
      // Kept current, so a response cut short, or ended by trailers, has what it carried.
      if (reader.usage !== undefined) ctx.usage = reader.usage;
      if (reader.model !== undefined) ctx.modelServed = reader.model;
      // Recorded only once the error event is actually in the client's stream.
      if (ctx.streamError !== undefined && ctx.error === undefined && reader.stream?.ended === true)
        this.recordStreamError(ctx.streamError);
    }
    const out = this.pipeline.responseBody(ctx, forward, endOfStream);
    const original = whole ? EMPTY : chunk;
    if (out instanceof Promise)
      return out.then((body) => {
        if (!this.finished) this.answerResponseBody(original, body, endOfStream);
      });
    this.answerResponseBody(original, out, endOfStream);
  }

  /** `forward` is what the stages made of `chunk`: the body mutation when it differs. */
  private answerResponseBody(chunk: Buffer, forward: Buffer, endOfStream: boolean): void {
    const ctx = this.ctx;
    const response: CommonResponse = {};
    if (forward !== chunk) {
      response.bodyMutation = forward.length > 0 ? { body: forward } : { clearBody: true };
      // BUFFERED: the headers are still held, and Envoy applies a body answer's header mutation
      // to them, so the length can follow the rewritten body (DLP on a JSON response).
      if (this.responseBodyMode === BodySendMode.BUFFERED && ctx.responseHeaders.has('content-length'))
        response.headerMutation = headerMutation([['content-length', String(forward.length)]], []);
    }
    const message: ProcessingResponse = { responseBody: { response } };
    if (endOfStream) {
      this.seen |= Seen.ResponseBodyEnd;
      this.finishOutcome();
      this.attachFinalMetadata();
      this.answerLast(message, ctx.outcome ?? 'completed');
      return;
    }
    this.answer(message);
    // The chunk's events for read-only stages (metering's delivered text) are decoded once
    // its answer is on the wire: in the next immediate, with every other stream's.
    if (this.responseReader !== undefined && this.responseReader.deferredEvents > 0) {
      decoding.push(this);
      if (decoding.length === 1) setImmediate(decodeDeferredEvents);
    }
  }

  /** Hand the response events whose decoding waited to the stages (ResponseReader.flushEvents). */
  flushResponseEvents(): void {
    const reader = this.responseReader;
    if (reader === undefined || reader.deferredEvents === 0) return;
    try {
      reader.flushEvents();
    } catch (err) {
      // The chunks were answered already; a read-only stage that throws only loses its count.
      this.ctx.failure ??= `a response event stage failed: ${err instanceof Error ? err.message : String(err)}`;
      this.deps.logger.error({ requestId: this.ctx.requestId, err }, 'response event stage failed');
    }
    if (reader.model !== undefined) this.ctx.modelServed = reader.model;
  }

  /** Response trailers (asked for whenever the body is read): the end of the response when the
   * last body message did not say so. Bytes a stage still holds cannot be sent with trailers;
   * only an incomplete trailing event can be held, which no client could have used. */
  /** A stage ended the client's stream with an error event: the client saw upstream's status
   * and then the error, which is what the record says. */
  private recordStreamError(err: GateError): void {
    const ctx = this.ctx;
    ctx.error = err;
    ctx.outcome = err.outcome;
    ctx.failure ??= `response stream ended with an error event (${err.code})`;
    ctx.setMetadata('error_code', err.code);
    if (err.ruleId !== undefined) ctx.setMetadata('rule_id', err.ruleId);
  }

  private onResponseTrailers(): void {
    if (!(this.seen & Seen.ResponseBodyEnd) && this.responseBodyHeldWhole()) {
      // A trailers answer carries no body: the held body could only be dropped (the client would
      // get a complete, empty 200), so the response is cut instead (fail closed), and the record
      // says why.
      this.ctx.failure = 'response trailers ended a body held whole for its end (a trailers answer carries no body)';
      throw internalError();
    }
    this.seen |= Seen.ResponseBodyEnd;
    this.flushResponseEvents();
    this.finishOutcome();
    this.attachFinalMetadata();
    this.answerLast({ responseTrailers: {} }, this.ctx.outcome ?? 'completed');
  }

  /** Bytes of the response are held until its end_of_stream: a body a stage needs whole, held
   * here under FULL_DUPLEX_STREAMED (responseHeld), or a JSON body a stage rewrites (DLP), which
   * is only ever rewritten whole and so held by the stage (each chunk answered empty). */
  private responseBodyHeldWhole(): boolean {
    if (this.responseHeld !== undefined) return this.responseHeld.bytes > 0;
    const reader = this.responseReader;
    return (
      reader !== undefined &&
      reader.stream === undefined &&
      this.ctx.responseBodyRewritten &&
      this.ctx.responseBytes > 0
    );
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

  private answer(message: ProcessingResponse, timed = true): void {
    // After an ImmediateResponse (a refusal, or the deadline answering 503) Envoy expects
    // nothing more; a stage that completes late must not produce a second answer.
    if (this.answeredImmediately) return;
    const cur = this.current;
    if (cur) {
      // timed: the phase's time is taken once, at its last answer.
      if (timed) this.recordPhaseTime(cur.phase, cur.startNs);
      if (cur.observe) return; // observability_mode: Envoy expects no answer
    }
    if (this.closed) return;
    const unsent = this.ctx.metadataUnsent;
    if (unsent !== undefined) {
      message.dynamicMetadata = toStruct({ [METADATA_NAMESPACE]: unsent });
      this.ctx.metadataUnsent = undefined;
    }
    this.call.write(message);
  }

  /** An empty answer: Envoy carries on unchanged. A response answers a phase under the field
   * name its request used. */
  private answerPassThrough(phase: Phase): void {
    this.answer({ [phase]: {} });
  }

  private recordPhaseTime(phase: Phase, startNs: bigint): void {
    this.ctx.gateNs[phase] += process.hrtime.bigint() - startNs;
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
      gateError = internalError();
    }
    ctx.error = gateError;
    if (ctx.responseStarted && this.responseHeadersHeldByEnvoy()) ctx.responseStarted = false;
    // A refusal the gate decided (401…429, 503 draining) is 'rejected'; the gate failing to
    // decide (a stage threw, or missed the deadline) is 'error'. Once the response headers went
    // to the client, the ImmediateResponse only makes Envoy cut the response short: the client
    // saw the upstream status and a truncated body, and the record says so.
    ctx.outcome = gateError.outcome === 'error' || ctx.responseStarted ? 'error' : 'rejected';
    if (ctx.responseStarted) ctx.failure = `response cut after its headers were sent: ${ctx.failure ?? gateError.code}`;
    if (this.current?.observe) {
      // No answer can be given in observability mode; the decision is recorded only.
      this.finish(ctx.outcome);
      return;
    }
    ctx.setMetadata('outcome', ctx.outcome);
    ctx.setMetadata('error_code', gateError.code);
    if (gateError.ruleId !== undefined) ctx.setMetadata('rule_id', gateError.ruleId);
    const refusal: ProcessingResponse = { immediateResponse: immediateResponseFor(gateError) };
    if (this.holdsLastAnswer()) {
      // Through a local, not `this.afterRecord = () => …`: V8 allocates a function literal
      // assigned straight to a `this` property in the old generation, where it would keep this
      // request's state through every scavenge until a mark-compact (README Performance: Node
      // 24's WritableState does it to every stream).
      const after = (): void => {
        this.answer(refusal);
        this.answeredImmediately = true;
      };
      this.afterRecord = after;
      this.finish(ctx.outcome);
      return;
    }
    this.answer(refusal);
    this.answeredImmediately = true;
    this.finish(ctx.outcome);
  }

  /** A STREAMED response body that had wholly reached Envoy (with its trailers, if any) before
   * the headers' answer is sent as one message, its trailers after it, and Envoy holds the
   * headers until both are answered (processor_state.cc, handleHeadersResponse:
   * complete_body_available_): a refusal then is a clean local reply, not a cut. From here that
   * is a first body message that ends the body, or trailers after at most one body message. A
   * body that came after the headers' answer in one piece looks the same though its headers
   * went; the record follows the common case (a JSON answer is written whole). */
  private responseHeadersHeldByEnvoy(): boolean {
    const phase = this.current?.phase;
    if (phase === 'responseTrailers') return this.ctx.responseChunks <= 1;
    return phase === 'responseBody' && this.ctx.responseChunks === 1 && this.responseBodyEnds;
  }

  /** The request's last answer, and its end. With audit.durability strict the answer waits
   * until the request's audit record is durable (fsynced): no client sees an answer whose
   * record a crash could still lose. Messages after it wait too (busy). */
  private answerLast(message: ProcessingResponse, outcome: Outcome): void {
    if (!this.holdsLastAnswer()) {
      this.answer(message);
      this.finish(outcome);
      return;
    }
    // Through a local for the same reason as in the refusal above (old-generation closures).
    const after = (): void => this.answer(message);
    this.afterRecord = after;
    this.finish(outcome);
  }

  private holdsLastAnswer(): boolean {
    if (!this.deps.audit.strict || this.current?.observe === true || this.closed) return false;
    this.busy = true;
    // The fsync (and, from a gate worker, the main thread's ack) must not run into Envoy's
    // message_timeout: Envoy would answer the client itself while the record says otherwise.
    this.askEnvoyToWait(this.ctx.config.server.maxMessageDeadlineMs);
    return true;
  }

  /** Strict durability: the held last answer, once the record is durable. */
  private durable(): void {
    const answer = this.afterRecord;
    this.afterRecord = undefined;
    answer?.();
    this.busy = false;
    this.pump();
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
      this.call.fail(GrpcStatus.FAILED_PRECONDITION, `lm-gate: ${detail}`);
    }
  }

  // ---- end of life ----

  /** Finish exactly once: settle the stages, then one audit record and the metrics. The
   * outcome is fixed here; what follows only completes the record.
   *
   * Settling: ctx.signal aborts first. A hook still running (overtaken by the deadline, or the
   * stream was cancelled under it) is awaited, then every stage's onEnd, each wait bounded by
   * server.settleTimeoutMs: a reservation a late hook made is refunded before the record is
   * written, and a stage that never settles delays the record by the bound, not forever.
   *
   * The outcome and the abort are decided here; the stages' onEnd, the record and the metrics
   * run in the next immediate (recordFinished), once the answer written before this call is on
   * the wire: Node's HTTP/2 session sends what handlers wrote only when the JavaScript of the
   * socket read (or immediate) returns, so work done here would hold the last answer back, and
   * every other answer of the same read with it. */
  finish(outcome: Outcome, reason: AbortReason = 'finished'): void {
    if (this.finished) return;
    this.finished = true;
    this.clearDeadline();
    const ctx = this.ctx;
    ctx.abort(reason);
    ctx.outcome ??= outcome;
    // A stream that broke off before its request headers still gets an identifiable record.
    if (ctx.requestId === '') ctx.requestId = crypto.randomUUID();
    const late = this.running;
    if (late === undefined) {
      finishing.push(this);
      if (finishing.length === 1) setImmediate(recordFinished);
      return;
    }
    void this.settle(late, 'a late hook').then(() => this.endAndRecord());
  }

  /** The stages' onEnd (awaited, bounded), then the record: written even when the end fails. */
  endAndRecord(): void {
    // A response cut short: the events of its last answered chunks still count.
    this.flushResponseEvents();
    let ending: Promise<void> | undefined;
    try {
      ending = this.endStages() ?? undefined;
    } catch (err) {
      this.ctx.failure ??= 'the stages could not end the request';
      this.deps.logger.error({ requestId: this.ctx.requestId, err }, 'ending the stages failed');
    }
    if (ending === undefined) this.recordOnce();
    else void this.settle(ending, 'onEnd').then(() => this.recordOnce());
  }

  /** record(), run from an immediate or a promise: a failure is logged, and the other streams
   * finished in the same immediate still get theirs. */
  private recordOnce(): void {
    try {
      this.record();
    } catch (err) {
      this.deps.logger.error({ requestId: this.ctx.requestId, err }, 'recording a finished request failed');
    }
  }

  private endStages(): void | Promise<void> {
    return this.pipeline.end(this.ctx, (stage, err) => {
      this.ctx.failure ??= `stage ${stage} failed at the end of the request`;
      this.deps.logger.error({ requestId: this.ctx.requestId, stage, err }, 'stage onEnd failed');
    });
  }

  /** Waits for `work`, at most server.settleTimeoutMs; never rejects. */
  private settle(work: Promise<void>, what: string): Promise<void> {
    const ms = this.ctx.config.server.settleTimeoutMs;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        const note = `${what} did not settle within ${ms} ms; recorded without it`;
        this.ctx.failure = this.ctx.failure === undefined ? note : `${this.ctx.failure}; ${note}`;
        this.deps.logger.warn({ requestId: this.ctx.requestId, what }, 'stage did not settle');
        resolve();
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      // The late hook's own failure was already handled (or deliberately ignored) by fail().
      work.then(done, done);
    });
  }

  private record(): void {
    const ctx = this.ctx;
    const record = buildAuditRecord(ctx);
    this.deps.audit.write(record, this.afterRecord ? () => this.durable() : undefined, captureLine(ctx));
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
    this.finish('cancelled', 'drain');
    if (!this.closed) {
      this.closed = true;
      this.call.fail(GrpcStatus.UNAVAILABLE, `lm-gate: ${reason}`);
    }
  }

  get isFinished(): boolean {
    return this.finished;
  }
}
