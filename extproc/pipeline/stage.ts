// A stage is one decision over the request lifecycle, with a hook per ext_proc phase it cares
// about. Stages read and write the RequestContext; they refuse a request by throwing a
// GateError. They never touch the gRPC stream: the state machine turns their effects into the
// one answer each message gets.
//
// Hooks may return a promise (a Redis call, a JWKS fetch); the state machine bounds every
// message with server.messageDeadlineMs, so a slow dependency cannot hold Envoy past its
// message_timeout.
import type { RequestContext } from './context.ts';

export type MaybePromise = void | Promise<void>;

export interface Stage {
  readonly name: string;
  onRequestHeaders?(ctx: RequestContext): MaybePromise;
  /** The whole request body (request_body_mode BUFFERED), as received. To rewrite it, set
   * ctx.rewrittenBody to new bytes derived from `ctx.rewrittenBody ?? body`. */
  onRequestBody?(ctx: RequestContext, body: Buffer): MaybePromise;
  onResponseHeaders?(ctx: RequestContext): MaybePromise;
  /** One response body chunk (STREAMED) or the whole body (BUFFERED). Return the bytes to
   * forward: the same Buffer when unchanged, so the state machine can skip a body mutation. */
  onResponseBody?(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer;
  /** Always called exactly once, after the last answer or when the stream is cancelled. */
  onEnd?(ctx: RequestContext): void;
}
