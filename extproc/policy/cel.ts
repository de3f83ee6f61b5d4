// Rule conditions (`when`) in CEL, the expression language of Envoy RBAC, Kubernetes and Envoy AI
// Gateway, with @marcbachmann/cel-js. Each condition is parsed and type-checked once, when the
// config is loaded, against the documented input (README "Policy rules"): a syntax or type error
// is a config error naming the rule and the position. A request only runs the compiled
// expression over its input.
//
// Besides the result, compiling says which input the condition reads: one that reads the model,
// the body's fields, the data classes or the route can only be decided once the body is in,
// while the others decide at request headers (so an endpoint denial does not wait for a body).
import { type ASTNode, Environment } from '@marcbachmann/cel-js';
import type { PolicyInput } from './input.ts';
import { type ZoneClock, zoneClock } from './zone-clock.ts';

/** The principal as conditions see it: every field present (team and user "" when unset), so a
 * condition never fails on a missing field. */
class CelPrincipal {
  readonly id: string;
  readonly tenant: string;
  readonly team: string;
  readonly user: string;
  readonly roles: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly method: string;
  readonly issuer: string;
  constructor(input: PolicyInput) {
    const p = input.principal;
    this.id = p.id;
    this.tenant = p.tenant;
    this.team = p.team ?? '';
    this.user = p.user ?? '';
    this.roles = p.roles;
    this.attributes = p.attributes;
    this.method = p.method;
    this.issuer = p.issuer;
  }
}

/** Endpoints that generate: where a body without max_tokens, or with Ollama's negative
 * num_predict, lets the server generate as far as it goes (vLLM: to the end of the context). */
export const GENERATES: ReadonlySet<string> = new Set([
  'openai.chat',
  'openai.completions',
  'ollama.chat',
  'ollama.generate',
  'tgi.generate',
  'tgi.generate_stream',
]);
/** CEL's largest int: what a request that sets no limit may generate. */
const UNBOUNDED = 9223372036854775807n;

/** model "" until the body is read, or when it names none. max_tokens: as asked; on an endpoint
 * that generates, unset or negative (no limit) is the largest int, so a cap written as
 * `request.max_tokens > N` is not passed by leaving it out; elsewhere 0. */
class CelRequest {
  readonly endpoint: string;
  readonly model: string;
  readonly stream: boolean;
  readonly max_tokens: bigint;
  readonly path: string;
  readonly method: string;
  constructor(input: PolicyInput) {
    const r = input.request;
    this.endpoint = r.endpoint;
    this.model = r.model ?? '';
    this.stream = r.stream;
    const asked = r.maxTokens;
    this.max_tokens = asked !== undefined && asked >= 0 ? BigInt(asked) : GENERATES.has(r.endpoint) ? UNBOUNDED : 0n;
    this.path = r.path;
    this.method = r.method;
  }
}

/** name "" and no labels when no routing stage chose a route. */
class CelRoute {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  constructor(input: PolicyInput) {
    this.name = input.route?.name ?? '';
    this.labels = input.route?.labels ?? NO_LABELS;
  }
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const NO_CLASSES: readonly string[] = Object.freeze([]);

/** The documented input, as CEL variables. */
export const CEL_VARIABLES = {
  principal: 'lmgate.Principal: id, tenant, team, user, roles (list), attributes (map), method, issuer',
  request: 'lmgate.Request: endpoint, model, stream, max_tokens, path, method',
  data_classes: 'list<string>',
  route: 'lmgate.Route: name, labels (map)',
  time: 'google.protobuf.Timestamp',
} as const;

function baseEnvironment(): Environment {
  return new Environment({
    // A condition is a few comparisons; the limits bound what one config can make a request
    // evaluate.
    limits: { maxAstNodes: 500, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 8 },
  })
    .registerType('lmgate.Principal', {
      ctor: CelPrincipal,
      fields: {
        id: 'string',
        tenant: 'string',
        team: 'string',
        user: 'string',
        roles: 'list<string>',
        attributes: 'map<string, string>',
        method: 'string',
        issuer: 'string',
      },
    })
    .registerType('lmgate.Request', {
      ctor: CelRequest,
      fields: {
        endpoint: 'string',
        model: 'string',
        stream: 'bool',
        max_tokens: 'int',
        path: 'string',
        method: 'string',
      },
    })
    .registerType('lmgate.Route', { ctor: CelRoute, fields: { name: 'string', labels: 'map<string, string>' } })
    .registerVariable('principal', 'lmgate.Principal')
    .registerVariable('request', 'lmgate.Request')
    .registerVariable('data_classes', 'list<string>')
    .registerVariable('route', 'lmgate.Route')
    .registerVariable('time', 'google.protobuf.Timestamp');
}

/** One per time zone: the variables, plus time.localHour() and time.localWeekday() in that zone.
 * (cel-js's own time.getHours("Europe/Berlin") formats with Intl on every call, about 36 µs; these
 * look the zone's offset up once per quarter hour.) */
export function celEnvironment(timeZone: string): Environment {
  const clock: ZoneClock = zoneClock(timeZone);
  return baseEnvironment()
    .registerFunction({
      name: 'localHour',
      receiverType: 'google.protobuf.Timestamp',
      returnType: 'int',
      params: [],
      description: 'Hour of the day, 0-23, in policy.timeZone.',
      handler: (t: Date) => BigInt(clock.hour(t.getTime())),
    })
    .registerFunction({
      name: 'localWeekday',
      receiverType: 'google.protobuf.Timestamp',
      returnType: 'int',
      params: [],
      description: 'Day of the week, 0 (Sunday) to 6, in policy.timeZone.',
      handler: (t: Date) => BigInt(clock.weekday(t.getTime())),
    });
}

/** The variables a request carries for its conditions, built once per request phase and only
 * when a condition runs. */
export interface CelActivation {
  principal: CelPrincipal;
  request: CelRequest;
  data_classes: readonly string[];
  route: CelRoute;
  time: Date;
}

/** The input's variables, made once per phase. */
export function celVariables(input: PolicyInput): CelActivation {
  input.cel ??= celActivation(input);
  return input.cel;
}

function celActivation(input: PolicyInput): CelActivation {
  return {
    principal: new CelPrincipal(input),
    request: new CelRequest(input),
    data_classes: input.dataClasses.size === 0 ? NO_CLASSES : [...input.dataClasses],
    route: new CelRoute(input),
    time: new Date(input.nowMs),
  };
}

export interface CompiledCondition {
  readonly source: string;
  /** Reads facts known only once the body is in: request.model, .stream, .max_tokens (or the
   * whole request), data_classes, route. */
  readonly readsBody: boolean;
  /** true or false; throws what the expression raised (a missing map key, an overflow). */
  evaluate(activation: CelActivation): boolean;
}

/** A condition's compile error: what is wrong and where (1-based line and column). */
export class ConditionError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(summary: string, source: string, offset: number) {
    const before = source.slice(0, Math.max(0, Math.min(offset, source.length)));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    super(`${summary} at line ${line}, column ${column}`);
    this.name = 'ConditionError';
    this.line = line;
    this.column = column;
  }
}

/** Parse and type-check; throws ConditionError. */
export function compileCondition(env: Environment, source: string): CompiledCondition {
  const checked = env.check(source);
  if (!checked.valid) {
    const e = checked.error!;
    throw new ConditionError(e.summary, source, e.range?.start ?? 0);
  }
  if (checked.type !== 'bool')
    throw new ConditionError(`a condition must be a bool expression, this one is ${checked.type}`, source, 0);
  const program = env.parse(source);
  const regex = firstCall(program.ast, 'matches');
  if (regex !== undefined)
    throw new ConditionError(
      "matches() is not available: a regular expression over request input can backtrack for seconds on the event loop; use startsWith(), endsWith(), contains() or the rule's * patterns",
      source,
      regex.range.start,
    );
  return {
    source,
    readsBody: readsBody(program.ast),
    evaluate: (activation) => program(activation) === true,
  };
}

/** Every node under `root`, with its parent. */
function walk(root: ASTNode, visit: (n: ASTNode, parent: ASTNode | undefined) => void): void {
  const into = (a: unknown, parent: ASTNode): void => {
    if (Array.isArray(a)) for (const x of a) into(x, parent);
    else if (a !== null && typeof a === 'object' && 'op' in a) step(a as ASTNode, parent);
  };
  const step = (n: ASTNode, parent: ASTNode | undefined): void => {
    visit(n, parent);
    if (n.op !== 'id' && Array.isArray(n.args)) for (const a of n.args as unknown[]) into(a, n);
  };
  step(root, undefined);
}

/** The first call of a function or method by that name. */
function firstCall(root: ASTNode, name: string): ASTNode | undefined {
  let found: ASTNode | undefined;
  walk(root, (n) => {
    if (found === undefined && (n.op === 'call' || n.op === 'rcall') && n.args[0] === name) found = n;
  });
  return found;
}

/** Fields of `request` known at request headers. */
const HEADER_FIELDS = new Set(['endpoint', 'path', 'method']);

/** Whether the expression reads a body fact. Conservative: `request` used other than through a
 * header field (passed whole, indexed, or a macro variable of that name) counts as a body read,
 * since deciding later is always correct and deciding early on a missing fact is not. */
function readsBody(root: ASTNode): boolean {
  let body = false;
  walk(root, (n, parent) => {
    if (n.op !== 'id') return;
    const name = n.args;
    if (name === 'data_classes' || name === 'route') body = true;
    else if (name === 'request') {
      const field = parent !== undefined && (parent.op === '.' || parent.op === '.?') ? parent.args[1] : undefined;
      if (field === undefined || !HEADER_FIELDS.has(field)) body = true;
    }
  });
  return body;
}
