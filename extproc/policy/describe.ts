// How `lm-gate policy explain` and `policy test` are told about a caller and a request, without a
// credential or an HTTP exchange: a principal as JSON (or an API key's id from the config) and a
// request by its facts ({endpoint, model, ...}, or a path). Each is resolved to what the gate
// itself would have at that point, so the evaluation judges what the gate would.
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { principalOf } from '../identity/api-key-authenticator.ts';
import { apiSpec } from '../llm/apis.ts';
import { classifyPath } from '../llm/shapes.ts';
import type { Principal, RouteChoice } from '../pipeline/context.ts';
import { PRINCIPAL_METHODS, RULE_ENDPOINTS } from './endpoints.ts';
import { pathOnly } from './input.ts';

export const principalDescription = z
  .object({
    id: z.string().min(1),
    tenant: z.string().min(1),
    team: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    roles: z.array(z.string().min(1)).default([]),
    attributes: z.record(z.string(), z.string()).default({}),
    method: z.enum(PRINCIPAL_METHODS).default('jwt'),
    issuer: z.string().default(''),
  })
  .strict();

export const requestDescription = z
  .object({
    endpoint: z.enum(RULE_ENDPOINTS as [string, ...string[]]).optional(),
    path: z.string().startsWith('/').optional(),
    method: z
      .string()
      .regex(/^[A-Z]+$/)
      .optional(),
    model: z.string().min(1).optional(),
    stream: z.boolean().optional(),
    max_tokens: z.number().int().optional(),
    data_classes: z.array(z.string().min(1)).default([]),
    route: z
      .object({ name: z.string().min(1), labels: z.record(z.string(), z.string()).default({}) })
      .strict()
      .optional(),
    time: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export type PrincipalDescription = z.infer<typeof principalDescription>;
export type RequestDescription = z.infer<typeof requestDescription>;

/** A request as the gate would see it. */
export interface ResolvedRequest {
  endpoint: string;
  method: string;
  path: string;
  /** The stages would read its body (a POST to an LLM API). */
  bodyFollows: boolean;
  model: string | undefined;
  stream: boolean;
  maxTokens: number | undefined;
  dataClasses: ReadonlySet<string>;
  route: RouteChoice | undefined;
  nowMs: number | undefined;
}

/** A description that does not say a request the gate could receive. */
export class DescriptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DescriptionError';
  }
}

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
}

export function parsePrincipal(value: unknown): Principal {
  const r = principalDescription.safeParse(value);
  if (!r.success) throw new DescriptionError(`principal: ${issues(r.error)}`);
  const p = r.data;
  return {
    id: p.id,
    tenant: p.tenant,
    team: p.team,
    user: p.user,
    roles: p.roles,
    attributes: p.attributes,
    method: p.method,
    issuer: p.issuer,
    scope: undefined,
  };
}

/** The principal an API key of the config stands for, scope included. */
export function keyPrincipal(config: Config, keyId: string): Principal {
  const entry = config.identity.apiKeys.find((k) => k.id === keyId);
  if (entry === undefined) throw new DescriptionError(`no API key "${keyId}" in identity.apiKeys`);
  if (entry.disabled) throw new DescriptionError(`API key "${keyId}" is disabled: the gate refuses it with 401`);
  return principalOf(entry);
}

export function parseRequest(value: unknown): ResolvedRequest {
  const r = requestDescription.safeParse(value);
  if (!r.success) throw new DescriptionError(`request: ${issues(r.error)}`);
  const d = r.data;
  let { endpoint, method, path } = d;
  if (path !== undefined) {
    const spec = endpoint === undefined ? undefined : apiSpec(endpoint as never);
    method ??= spec?.method ?? 'POST';
    const classified = classifyPath(method, path);
    if (endpoint !== undefined && endpoint !== classified)
      throw new DescriptionError(`request: ${method} ${path} is ${classified}, not ${endpoint}`);
    endpoint = classified;
    path = pathOnly(path);
  } else {
    if (endpoint === undefined) throw new DescriptionError('request: give its endpoint (openai.chat, ...) or its path');
    const spec = apiSpec(endpoint as never);
    if (spec === undefined) throw new DescriptionError('request: an unknown endpoint needs its path');
    if (method !== undefined && method !== spec.method)
      throw new DescriptionError(`request: ${endpoint} is called with ${spec.method}, not ${method}`);
    method = spec.method;
    path = spec.paths[0]!;
  }
  const spec = apiSpec(endpoint as never);
  const bodyFollows = method === 'POST' && spec?.body === true;
  if (bodyFollows && spec?.namesModel === true && d.model === undefined)
    throw new DescriptionError(`request: ${endpoint} calls name a model (the gate refuses one without, 400)`);
  if (bodyFollows && spec?.namesModel === false && d.model !== undefined)
    throw new DescriptionError(`request: ${endpoint} calls name no model; the gate judges them as routing.tgiModel`);
  if (
    !bodyFollows &&
    (d.model !== undefined ||
      d.stream !== undefined ||
      d.max_tokens !== undefined ||
      d.data_classes.length > 0 ||
      d.route !== undefined)
  )
    // Each of these is read from the body, or by a stage that reads it (DLP, routing).
    throw new DescriptionError(
      `request: ${method} ${path} has no body, so no model, stream, max_tokens, data_classes or route`,
    );
  return {
    endpoint,
    method,
    path,
    bodyFollows,
    model: d.model,
    // Ollama's chat and generate stream unless the body says "stream": false; TGI's
    // generate_stream always does.
    stream: spec?.streams === 'always' || (d.stream ?? spec?.streams === 'by_default'),
    maxTokens: d.max_tokens,
    dataClasses: new Set(d.data_classes),
    route: d.route,
    nowMs: d.time === undefined ? undefined : Date.parse(d.time),
  };
}
