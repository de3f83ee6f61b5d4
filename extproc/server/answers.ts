// The messages the state machine sends Envoy, built from what the stages decided. Kept apart from
// stream.ts so the state machine reads as transitions, and these shapes can be checked alone.
import type { PhaseOutput } from '../pipeline/context.ts';
import type { GateError } from '../pipeline/errors.ts';
import { type CommonResponse, headerMutation, type ImmediateResponse } from './protocol.ts';

/** The header mutation and route-cache flag the stages asked for in this phase. */
export function commonResponse(out: PhaseOutput): CommonResponse {
  const response: CommonResponse = {};
  if (out.setHeaders.length > 0 || out.removeHeaders.length > 0)
    response.headerMutation = headerMutation(out.setHeaders, out.removeHeaders);
  if (out.clearRouteCache) response.clearRouteCache = true;
  return response;
}

/** A refusal as the client gets it: its status, the OpenAI-style JSON body, and the headers its
 * status always carries (www-authenticate, retry-after). */
export function immediateResponseFor(err: GateError): ImmediateResponse {
  const headers: [string, string][] = [['content-type', 'application/json']];
  for (const h of err.headers) headers.push([h[0], h[1]]);
  return {
    status: { code: err.status },
    headers: headerMutation(headers, []),
    body: err.body(),
    // Shows up as %RESPONSE_CODE_DETAILS% in Envoy's access log.
    details: `lm_gate_${err.code}`,
  };
}

/** protobufjs decodes bytes to a Buffer slice, but an absent field reads as its default (an
 * empty plain array), which is how Envoy's final STREAMED chunk often arrives. */
export function asBuffer(b: Uint8Array | undefined): Buffer {
  if (b === undefined || b.length === 0) return EMPTY;
  if (Buffer.isBuffer(b)) return b;
  return b instanceof Uint8Array
    ? Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    : Buffer.from(b as ArrayLike<number>);
}
const EMPTY = Buffer.alloc(0);
