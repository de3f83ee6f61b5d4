// The ext_proc phases, listed once: the order Envoy sends them in, and the name each carries in
// metrics, the audit record and logs. A ProcessingResponse answers a phase under the same field
// name the ProcessingRequest used, so a pass-through answer is `{ [phase]: {} }`.
import type { Phase } from './protocol.ts';

export type { Phase };

export const PHASE_LABEL = {
  requestHeaders: 'request_headers',
  requestBody: 'request_body',
  requestTrailers: 'request_trailers',
  responseHeaders: 'response_headers',
  responseBody: 'response_body',
  responseTrailers: 'response_trailers',
} as const satisfies Record<Phase, string>;

export const PHASES = Object.keys(PHASE_LABEL) as Phase[];

/** Nanoseconds of gate work per phase, summed over that phase's messages. */
export type PhaseTimes = Record<Phase, bigint>;

export function zeroPhaseTimes(): PhaseTimes {
  return {
    requestHeaders: 0n,
    requestBody: 0n,
    requestTrailers: 0n,
    responseHeaders: 0n,
    responseBody: 0n,
    responseTrailers: 0n,
  };
}
