// The stage contract. A stage is one decision over the request lifecycle, with a hook per
// ext_proc phase it cares about. Stages read and write the RequestContext; they refuse a request
// by throwing a GateError. They never touch the gRPC stream: the state machine turns their
// effects into the one answer each message gets.
//
// A stage is published as a descriptor: its name, the facts it needs from earlier stages and the
// facts it provides to later ones, and create(), called once per config snapshot (compile rules
// and indexes there, not per request). The composition root (stages.ts) lists the descriptors in
// the order they run; the config only chooses which of them run, and a choice that leaves a
// stage without a fact it needs is refused when the config is loaded.
//
// Hooks may return a promise (a Redis call, a JWKS fetch). The state machine bounds every
// message with server.messageDeadlineMs; ctx.signal aborts when it stops waiting (deadline,
// Envoy cancelling the stream, drain), and async hooks pass it on to what they call.
import type { Config } from '../config/schema.ts';
import type { KeyRegistry } from '../identity/jwt/key-registry.ts';
import type { KillBoard } from '../killswitch/kill-set.ts';
import type { LimitBackend } from '../limits/backend.ts';
import type { ParsePool } from '../llm/parse-pool.ts';
import type { ResponseEvent } from '../llm/response-stream.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { RequestContext } from './context.ts';

export type MaybePromise = void | Promise<void>;

/** What a stage can establish about a request for the stages after it, and where it lands on
 * the context. A stage that needs a fact runs only in a pipeline where an earlier stage (or the
 * state machine) provides it, so it never silently checks nothing. */
export const FACTS = {
  api: 'ctx.api: which LLM API the path is (the state machine classifies every request)',
  principal: 'ctx.principal: who is calling, however they were identified',
  parsed: 'ctx.parsed: the request body checked and its fields read (model, stream, spans)',
  dataClasses: 'data classes found in the request (PII, PHI, PCI, SECRET)',
  route: 'the upstream chosen for the request',
  usage: 'ctx.usage: tokens upstream reported',
  admission: 'the request was admitted by limits and budgets',
} as const;
export type Fact = keyof typeof FACTS;

/** Facts the state machine establishes before any stage runs. */
export const BASE_FACTS: readonly Fact[] = ['api'];

/** Wall-clock milliseconds; injectable so window and expiry logic is tested without sleeping. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** Process-wide services a stage may use. They outlive config reloads: a stage created for a new
 * snapshot gets the same ones. */
export interface StageDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Where large request bodies are parsed off the event loop; absent: parse inline. */
  readonly parsePool?: ParsePool | undefined;
  /** The kill set shared through Redis, as this thread last heard it (empty without Redis). */
  readonly kills: KillBoard;
  /** JWT issuers' signing keys, cached for the process (kept across reloads). */
  readonly jwtKeys: KeyRegistry;
  /** Rate limit and budget counters (memory, Redis), kept across reloads; the limits stages
   * refuse to start without it. */
  readonly limits?: LimitBackend | undefined;
}

export interface Stage {
  onRequestHeaders?(ctx: RequestContext): MaybePromise;
  /** The whole request body, as received, after every earlier stage's body hook. To rewrite it,
   * set ctx.rewrittenBody to new bytes derived from `ctx.rewrittenBody ?? body`. */
  onRequestBody?(ctx: RequestContext, body: Buffer): MaybePromise;
  onResponseHeaders?(ctx: RequestContext): MaybePromise;
  /** One decoded event of a streamed response (after ctx.readResponseBody({ events: true })):
   * read its texts, tool-call arguments and usage; drop() or replace() it; or end the client's
   * stream with ctx.endResponseStream(err). Synchronous: it runs once per event. */
  onResponseEvent?(ctx: RequestContext, event: ResponseEvent): void;
  /** One raw response body chunk (STREAMED) or the whole body (BUFFERED), after the response
   * reader: for stages that work on bytes, not events. Return the bytes to forward: the same
   * Buffer when unchanged, so the state machine can skip a body mutation. A promise only for
   * real async work (a large buffered body scanned on the parse pool: set ctx.out.slow too);
   * the answer waits for it, and a rejection refuses like a throw. */
  onResponseBody?(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer | Promise<Buffer>;
  /** Called exactly once per request, after its last answer or when it was cut short, and only
   * once any hook still running (overtaken by the deadline or a cancel) has settled or been
   * aborted: release or refund here what an earlier hook reserved. May be async; the audit
   * record is written after it, or after server.settleTimeoutMs. */
  onEnd?(ctx: RequestContext): MaybePromise;
  /** Runs before any stage's onEnd, once per request, one stage after the other: completes the
   * facts end hooks read (metering settles ctx.usage here, counting tokens when upstream
   * reported none, so limits settle from real counts). ctx.signal has already aborted. */
  beforeEnd?(ctx: RequestContext): MaybePromise;
}

export interface StageDescriptor<Name extends string = string> {
  /** `capability.stage`: the name pipeline.stages lists and decisions and logs carry. */
  readonly name: Name;
  /** One line for the README and the config reference. */
  readonly summary: string;
  readonly needs: readonly Fact[];
  readonly provides: readonly Fact[];
  /** Runs whatever pipeline.stages says: protocol safety every request needs, not a
   * capability an operator may leave out. */
  readonly always?: boolean;
  create(config: Config, deps: StageDeps): Stage;
}

/** Keeps the literal name in the descriptor's type, so the config's stage enum is derived. */
export function defineStage<const Name extends `${string}.${string}`>(d: StageDescriptor<Name>): StageDescriptor<Name> {
  return d;
}
