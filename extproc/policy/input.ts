// The policy input: what rules, conditions and an external OPA decide on. One typed document,
// built from the request context in the gate and from a principal and a request description in
// `lm-gate policy explain` and `policy test`, so the gate and the CLI judge the same thing.
import type { Principal, RequestContext, RouteChoice } from '../pipeline/context.ts';
import type { CelActivation } from './cel.ts';

export interface PolicyRequest {
  /** The API kind (openai.chat, ollama.tags, ...), "unknown" for paths outside the LLM APIs. */
  endpoint: string;
  /** Undefined until the body is read, and for calls without one. */
  model: string | undefined;
  stream: boolean;
  /** The most output tokens the body asks for (ParsedRequest.maxTokens), when it says. */
  maxTokens: number | undefined;
  /** Without the query string (query values can carry tokens or PII). */
  path: string;
  method: string;
}

export interface PolicyInput {
  principal: Principal;
  request: PolicyRequest;
  /** Empty until a stage that provides data classes ran. */
  dataClasses: ReadonlySet<string>;
  /** Undefined until a routing stage chose one. */
  route: RouteChoice | undefined;
  /** The instant conditions read as `time`: fixed when the request's evaluation starts, so the
   * header and body phases judge one instant. */
  nowMs: number;
  /** The conditions' variables, made when the first condition runs (cel.ts celVariables) and
   * dropped when the facts change. */
  cel?: CelActivation | undefined;
}

/** Without the query string. */
export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** The input at request headers: the body's facts are not known yet. */
export function inputAtHeaders(ctx: RequestContext, principal: Principal, nowMs: number): PolicyInput {
  return {
    principal,
    request: {
      endpoint: ctx.api,
      model: undefined,
      stream: false,
      maxTokens: undefined,
      path: pathOnly(ctx.path),
      method: ctx.method,
    },
    dataClasses: ctx.dataClasses,
    route: ctx.route,
    nowMs,
  };
}

/** The same input once the body was read (and DLP or routing may have run). */
export function completeWithBody(input: PolicyInput, ctx: RequestContext): void {
  const r = input.request;
  r.model = ctx.modelRequested;
  r.stream = ctx.stream;
  r.maxTokens = ctx.parsed?.maxTokens;
  input.dataClasses = ctx.dataClasses;
  input.route = ctx.route;
  input.cel = undefined;
}

/** The input as the JSON document an OPA policy reads as `input`: the CEL names, the time as
 * RFC 3339, absent facts as null. The credential scope is the gate's own affair and stays out. */
export function opaInput(input: PolicyInput): Record<string, unknown> {
  const p = input.principal;
  const r = input.request;
  return {
    principal: {
      id: p.id,
      tenant: p.tenant,
      team: p.team ?? null,
      user: p.user ?? null,
      roles: p.roles,
      attributes: p.attributes,
      method: p.method,
      issuer: p.issuer,
    },
    request: {
      endpoint: r.endpoint,
      model: r.model ?? null,
      stream: r.stream,
      max_tokens: r.maxTokens ?? null,
      path: r.path,
      method: r.method,
    },
    data_classes: [...input.dataClasses],
    route: input.route === undefined ? null : { name: input.route.name, labels: input.route.labels },
    time: new Date(input.nowMs).toISOString(),
  };
}
