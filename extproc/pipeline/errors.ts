// Errors are values from one closed catalog: each code carries its HTTP status, its OpenAI error
// type and the audit outcome it means. A stage refuses with `refuse(code, message)`; the state
// machine maps the GateError to an ImmediateResponse in one place, and code compares
// `err.outcome`, never strings. A new refusal is a new catalog row, so README's list of what a
// client may receive (checked against this table) cannot fall behind.

export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

/** rejected: the gate decided to refuse; error: the gate failed to decide. */
export type ErrorOutcome = 'rejected' | 'error';

export interface ErrorSpec {
  readonly status: number;
  readonly type: OpenAiErrorType;
  readonly outcome: ErrorOutcome;
  /** When a client gets it, for README's catalog. */
  readonly when: string;
}

const bad = (when: string): ErrorSpec => ({ status: 400, type: 'invalid_request_error', outcome: 'rejected', when });

export const ERROR_CATALOG = {
  invalid_json: bad('The body is not valid JSON.'),
  invalid_request: bad('A field the gate reads is missing or has the wrong type (`param` names it).'),
  empty_body: bad('An LLM call without a body.'),
  duplicate_key: bad('An object repeats a key: servers disagree on which one wins.'),
  ambiguous_key: bad('An object has keys that differ only in case (`model` and `MODEL`).'),
  json_too_deep: bad('Nesting deeper than `server.maxJsonDepth`.'),
  invalid_utf8: bad('The body is not valid UTF-8.'),
  unsupported_trailers: bad('Request trailers end a body Envoy streams to the gate.'),
  missing_api_key: {
    status: 401,
    type: 'authentication_error',
    outcome: 'rejected',
    when: 'No credential, or a malformed Authorization header.',
  },
  invalid_api_key: {
    status: 401,
    type: 'authentication_error',
    outcome: 'rejected',
    when: 'An API key that is malformed, unknown, disabled, expired or killed (`killSwitch`, `lm-gate kill`), or has the wrong secret: one answer for all, so a caller learns nothing from it.',
  },
  invalid_client_certificate: {
    status: 401,
    type: 'authentication_error',
    outcome: 'rejected',
    when: 'A client certificate (`identity.mtls`) whose identity is empty, ambiguous (several URI SANs or XFCC elements), malformed, or in no configured trust domain, path or subject.',
  },
  invalid_token: {
    status: 401,
    type: 'authentication_error',
    outcome: 'rejected',
    when: 'A JWT that does not hold: malformed, too large, from an unknown issuer, signed by an unknown key or wrongly, expired, not yet valid, for another audience, of the wrong type, or without the claims the principal needs (the message names which).',
  },
  endpoint_not_allowed: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: "The caller's credential does not allow this endpoint.",
  },
  model_not_allowed: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: "The caller's credential does not allow this model.",
  },
  principal_disabled: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: "The kill switch disabled the caller's user, team or tenant (`killSwitch` in the config, or `lm-gate kill`).",
  },
  model_disabled: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: 'The kill switch disabled the model (the one the request names, or its alias target), for every caller.',
  },
  policy_denied: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: 'A policy rule denied the request: a DENY rule, tenant isolation, no ALLOW rule matching (`policy.default`) or OPA; `rule_id` names it.',
  },
  content_blocked: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: 'A content rule blocked the request, or the response: a stream already under way then ends with this error event (status stays 200).',
  },
  prompt_injection: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: 'The prompt-injection guard judged the request an injection or jailbreak (`rule_id` `injection.<rule>` or `injection.classifier`), or could not judge it and fails closed (`injection.classifier_error`, `injection.scan_error`).',
  },
  no_eligible_route: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: "Routes serve the model, but none may receive this request's data classes or the caller's residency (`routing`).",
  },
  model_not_priced: {
    status: 403,
    type: 'permission_error',
    outcome: 'rejected',
    when: 'No price covers the model (`metering.prices`, `metering.routePrices`) and `metering.unknownModel` is `refuse`.',
  },
  model_not_found: {
    status: 404,
    type: 'invalid_request_error',
    outcome: 'rejected',
    when: 'No route serves the model the request names (`routing.routes`, after aliases).',
  },
  unsupported_endpoint: {
    status: 404,
    type: 'not_found_error',
    outcome: 'rejected',
    when: 'A path that is not an LLM API the gate serves (`policy.unknownEndpoints: reject`).',
  },
  request_too_large: {
    status: 413,
    type: 'invalid_request_error',
    outcome: 'rejected',
    when: 'A body over `server.maxRequestBodyBytes`, or over what Envoy buffers.',
  },
  unsupported_content_encoding: {
    status: 415,
    type: 'invalid_request_error',
    outcome: 'rejected',
    when: 'A compressed request body.',
  },
  unsupported_charset: {
    status: 415,
    type: 'invalid_request_error',
    outcome: 'rejected',
    when: 'A body declared in a charset other than UTF-8.',
  },
  rate_limit_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    outcome: 'rejected',
    when: 'A rate limit (`limits.rate`) has no room for the request; `rule_id` names the limit (`limits.rate.<id>`), `retry-after` and `x-ratelimit-*` say when there will be.',
  },
  budget_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    outcome: 'rejected',
    when: "The budget (`limits.budgets`) of the caller's key, team or tenant is spent for this period, and it names no `downgradeTo`; `rule_id` names it.",
  },
  internal_error: {
    status: 500,
    type: 'server_error',
    outcome: 'error',
    when: 'The gate failed (a stage threw, or Envoy is configured so that the body cannot be judged).',
  },
  gateway_timeout: {
    status: 503,
    type: 'service_unavailable',
    outcome: 'error',
    when: 'A stage did not decide within `server.messageDeadlineMs`.',
  },
  upstream_credential_unavailable: {
    status: 503,
    type: 'service_unavailable',
    outcome: 'error',
    when: "The chosen route's upstream credential could not be read (`routing.routes[].credential`).",
  },
  policy_unavailable: {
    status: 503,
    type: 'service_unavailable',
    outcome: 'error',
    when: 'The external policy decision (`policy.opa`) failed, timed out or was malformed: the gate fails closed; a retry may pass.',
  },
  limits_unavailable: {
    status: 503,
    type: 'service_unavailable',
    outcome: 'error',
    when: 'Redis did not answer in time for a limit or budget with `onRedisDown: closed`; a retry may pass.',
  },
  draining: {
    status: 503,
    type: 'service_unavailable',
    outcome: 'rejected',
    when: 'The gate is shutting down; another replica takes the retry.',
  },
  audit_unavailable: {
    status: 503,
    type: 'service_unavailable',
    outcome: 'rejected',
    when: 'The audit trail is not keeping up (`audit.maxPendingBytes`): the gate fails closed.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

const WWW_AUTHENTICATE: readonly (readonly [string, string])[] = [['www-authenticate', 'Bearer realm="lm-gate"']];
// RFC 6750 §3.1: a bearer token that was presented and failed says so, so a client library
// knows to fetch a new token rather than prompt for credentials.
const WWW_AUTHENTICATE_INVALID_TOKEN: readonly (readonly [string, string])[] = [
  ['www-authenticate', 'Bearer realm="lm-gate", error="invalid_token"'],
];
const RETRY_AFTER: readonly (readonly [string, string])[] = [['retry-after', '1']];
const NO_HEADERS: readonly (readonly [string, string])[] = [];

/** Extra response headers a code always carries. */
function headersFor(code: ErrorCode, status: number): readonly (readonly [string, string])[] {
  if (code === 'invalid_token') return WWW_AUTHENTICATE_INVALID_TOKEN;
  if (status === 401) return WWW_AUTHENTICATE;
  if (status === 503 || status === 429) return RETRY_AFTER;
  return NO_HEADERS;
}

export class GateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: OpenAiErrorType;
  readonly outcome: ErrorOutcome;
  readonly param: string | null;
  /** The policy rule that decided, when one did; echoed to the client and kept in the audit. */
  readonly ruleId: string | undefined;
  /** Extra response headers (retry-after, www-authenticate, ...). */
  readonly headers: readonly (readonly [string, string])[];

  constructor(
    code: ErrorCode,
    message: string,
    opts: {
      param?: string | null;
      ruleId?: string | undefined;
      headers?: readonly (readonly [string, string])[] | undefined;
    } = {},
  ) {
    super(message);
    const spec: ErrorSpec = ERROR_CATALOG[code];
    this.name = 'GateError';
    this.code = code;
    this.status = spec.status;
    this.type = spec.type;
    this.outcome = spec.outcome;
    this.param = opts.param ?? null;
    this.ruleId = opts.ruleId;
    // A refusal's own headers (a computed retry-after, x-ratelimit-*) replace the code's defaults.
    this.headers = opts.headers ?? headersFor(code, spec.status);
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

/** The one way to refuse: a catalog code and a message of ours (never client input). */
export function refuse(
  code: ErrorCode,
  message: string,
  opts?: {
    param?: string | null;
    ruleId?: string | undefined;
    headers?: readonly (readonly [string, string])[] | undefined;
  },
): GateError {
  return new GateError(code, message, opts);
}

/** The gate failed; the message is generic on purpose (details go to the log and the audit). */
export function internalError(message = 'The gateway failed to process the request.'): GateError {
  return new GateError('internal_error', message);
}

/** README's table of every code a client may receive. */
export function errorCatalogMarkdown(): string {
  const rows = Object.entries(ERROR_CATALOG).map(
    ([code, s]) => `| ${s.status} | \`${code}\` | \`${s.type}\` | ${s.outcome} | ${s.when} |`,
  );
  return ['| Status | Code | Type | Audit outcome | When |', '|---|---|---|---|---|', ...rows].join('\n');
}
