// Errors are values: a status, an OpenAI error type and code, and the rule that decided. The
// stream state machine maps them to an ImmediateResponse in one place (server/stream.ts).

export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export class GateError extends Error {
  readonly status: number;
  readonly type: OpenAiErrorType;
  readonly code: string;
  readonly param: string | null;
  /** The policy rule that decided, when one did; echoed to the client and kept in the audit. */
  readonly ruleId: string | undefined;
  /** Extra response headers (retry-after, www-authenticate, ...). */
  readonly headers: readonly (readonly [string, string])[];

  constructor(opts: {
    status: number;
    type: OpenAiErrorType;
    code: string;
    message: string;
    param?: string | null;
    ruleId?: string;
    headers?: readonly (readonly [string, string])[];
  }) {
    super(opts.message);
    this.name = 'GateError';
    this.status = opts.status;
    this.type = opts.type;
    this.code = opts.code;
    this.param = opts.param ?? null;
    this.ruleId = opts.ruleId;
    this.headers = opts.headers ?? [];
  }

  /** The OpenAI-style body clients parse: {"error":{"message","type","code","param"}}. The
   * message is ours, never an echo of client input, so nothing secret can leak through it. */
  body(): Buffer {
    const error: Record<string, unknown> = {
      message: this.message,
      type: this.type,
      code: this.code,
      param: this.param,
    };
    if (this.ruleId !== undefined) error.rule_id = this.ruleId;
    return Buffer.from(JSON.stringify({ error }));
  }
}

export const errors = {
  badRequest: (message: string, code = 'invalid_request', param: string | null = null) =>
    new GateError({ status: 400, type: 'invalid_request_error', code, message, param }),
  unauthenticated: (message: string, code = 'invalid_api_key') =>
    new GateError({
      status: 401,
      type: 'authentication_error',
      code,
      message,
      headers: [['www-authenticate', 'Bearer realm="lm-gate"']],
    }),
  forbidden: (message: string, ruleId: string, code = 'permission_denied') =>
    new GateError({ status: 403, type: 'permission_error', code, message, ruleId }),
  notFound: (message: string, code = 'unsupported_endpoint') =>
    new GateError({ status: 404, type: 'not_found_error', code, message }),
  tooLarge: (message: string) =>
    new GateError({ status: 413, type: 'invalid_request_error', code: 'request_too_large', message }),
  unsupportedMediaType: (message: string, code: string) =>
    new GateError({ status: 415, type: 'invalid_request_error', code, message }),
  unavailable: (message: string, code = 'service_unavailable') =>
    new GateError({ status: 503, type: 'service_unavailable', code, message, headers: [['retry-after', '1']] }),
  internal: (message = 'The gateway failed to process the request.') =>
    new GateError({ status: 500, type: 'server_error', code: 'internal_error', message }),
};
