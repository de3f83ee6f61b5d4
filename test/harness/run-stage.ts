// runStage(): the real pipeline and the real state machine (ProcessStream) for chosen stages,
// over a request description, with a fake gRPC call instead of a socket. It returns what the
// state machine would send Envoy, decoded into what it means: the refusal the client would get,
// the headers and body that would go upstream, the response the client would get, and the audit
// record. Stage decision tables use it, so every row exercises the code Envoy talks to.
//
//   const run = await runStage({ stages: ['policy.access'], given: { principal }, request: { path: '/v1/embeddings', body } });
//   expect(run.refused).toMatchObject({ status: 403, code: 'endpoint_not_allowed' });
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import type { AuditRecord } from '../../extproc/audit/record.ts';
import type { AuditSink } from '../../extproc/audit/sink.ts';
import { type Config, configSchema } from '../../extproc/config/schema.ts';
import { KeyRegistry } from '../../extproc/identity/jwt/key-registry.ts';
import { KillBoard, type KillSet } from '../../extproc/killswitch/kill-set.ts';
import { LimitBackend } from '../../extproc/limits/backend.ts';
import { buildPipeline } from '../../extproc/pipeline/build.ts';
import type { Principal, RequestContext, RouteChoice } from '../../extproc/pipeline/context.ts';
import { type Clock, defineStage, type Fact, type StageDescriptor, systemClock } from '../../extproc/pipeline/stage.ts';
import { STAGES } from '../../extproc/pipeline/stages.ts';
import { ATTRIBUTES_KEY } from '../../extproc/server/attributes.ts';
import { FilterConfigWatch } from '../../extproc/server/filter-config.ts';
import type { CallListener } from '../../extproc/server/h2-grpc.ts';
import {
  BodySendMode,
  decodeProcessingRequest,
  encodeProcessingRequest,
  type HeaderValue,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../extproc/server/protocol.ts';
import { ProcessStream, type StreamDeps } from '../../extproc/server/stream.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { expectWireBytes } from './wire-check.ts';

export interface RequestDescription {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; absent: a request without a body (GET, or POST with none). */
  body?: string | Buffer | Record<string, unknown>;
  /** The body comes without a content-length (HTTP/1.1 chunked, or HTTP/2 without one). */
  chunked?: boolean;
  /** The client goes away this many ms after its request headers were sent, whatever the gate
   * answered by then: Envoy cancels the stream, and nothing more is sent. */
  cancelAfterMs?: number;
  /** ext_proc request attributes Envoy would send with the headers (request_attributes), by
   * name: { 'connection.mtls': true, 'connection.uri_san_peer_certificate': 'spiffe://...' }. */
  attributes?: Record<string, string | boolean>;
}

/** Request attributes as the gate receives them: through the real codec, so the Struct's values
 * are the protobufjs instances grpc-server decodes, not look-alike objects. */
export function requestAttributes(attrs: Record<string, string | boolean>): ProcessingRequest['attributes'] {
  const fields = Object.fromEntries(
    Object.entries(attrs).map(([k, v]) => [k, typeof v === 'boolean' ? { boolValue: v } : { stringValue: v }]),
  );
  return decodeProcessingRequest(encodeProcessingRequest({ attributes: { [ATTRIBUTES_KEY]: { fields } } })).attributes;
}

export interface ResponseDescription {
  status?: number;
  headers?: Record<string, string>;
  /** Header lines after `headers`, a name repeated as upstream may send it. */
  extraHeaders?: [string, string][];
  /** Body chunks as upstream sends them. */
  chunks?: (string | Buffer)[];
  /** The client goes away after this many STREAMED chunks: Envoy half-closes mid-response. */
  cancelAfter?: number;
}

export interface RunStageOptions {
  /** Optional stages to run (pipeline.stages); `always` stages run too. */
  stages: readonly string[];
  /** Config fields over the defaults, as YAML would give them (identity.apiKeys, policy, ...). */
  config?: Record<string, unknown>;
  /** Facts seeded by a stage that runs first, so a stage can be tested without the stages that
   * would normally provide them. The principal is seeded at request headers; data classes and the
   * route, which DLP and routing find in the body, at the request body. */
  given?: { principal?: Principal; dataClasses?: readonly string[]; route?: RouteChoice };
  request: RequestDescription;
  /** Upstream's response; absent: a 200 JSON `{}`. Not used when the request is refused. */
  response?: ResponseDescription;
  /** Extra stages after the product's (mark them always). */
  extraStages?: readonly StageDescriptor[];
  /** The stages' clock (key and token expiry, policy conditions on time); the system clock when absent. */
  clock?: Clock;
  /** The kill set shared through Redis, as the replica last heard it (deps.kills). */
  kills?: KillSet;
  /** The JWT key cache (one per test, over a fake IdP); absent: a fresh one. */
  jwtKeys?: KeyRegistry;
  /** Rate limit and budget counters shared by several runs (one test's requests); absent: a
   * fresh memory store per run. */
  limits?: LimitBackend;
}

export interface StageRun {
  /** The refusal the client got instead of an upstream answer. */
  refused?: {
    status: number;
    code: string;
    type: string;
    message: string;
    param: string | null;
    ruleId?: string;
    /** Response headers the refusal carries (retry-after, x-ratelimit-*, ...). */
    headers: Record<string, string>;
  };
  /** What went upstream: headers the gate set and removed, and the body when it was rewritten. */
  upstream?: { set: Record<string, string>; removed: string[]; body?: string };
  /** What the client got of the response: headers set and removed, and the body as forwarded. */
  client?: { set: Record<string, string>; removed: string[]; body: string };
  audit: AuditRecord;
  ctx: RequestContext;
  answers: ProcessingResponse[];
  metrics: Metrics;
}

const logger = pino({ level: 'silent' });

/** A ServerDuplexStream stand-in: messages in with push(), answers out through next(). */
export class FakeCall extends EventEmitter {
  readonly written: ProcessingResponse[] = [];

  /** The stream's listener, fed by emit('data' | 'end' | 'cancelled') as H2Call feeds it. An
   * 'error' emitted here is the server failing the call (fail()): the listener, as over real
   * gRPC, is not told of its own failure. */
  listen(listener: CallListener<ProcessingRequest>): void {
    this.on('data', (m: ProcessingRequest) => listener.onMessage(m));
    this.on('end', () => listener.onEnd?.());
    this.on('cancelled', () => listener.onCancelled?.());
  }
  private waiters: ((m: ProcessingResponse | undefined) => void)[] = [];
  private read = 0;
  ended = false;

  write(msg: ProcessingResponse): boolean {
    expectWireBytes(msg);
    this.written.push(msg);
    this.flush();
    return true;
  }

  end(): void {
    this.ended = true;
    this.flush();
  }

  /** The server ends the call with an error status: seen as an 'error' event here. */
  fail(code: number, details: string): void {
    this.emit('error', { code, details });
    this.ended = true;
    this.flush();
  }

  private flush(): void {
    while (this.waiters.length > 0 && (this.read < this.written.length || this.ended)) {
      const w = this.waiters.shift()!;
      w(this.read < this.written.length ? this.written[this.read++] : undefined);
    }
  }

  /** The next answer that is not an override_message_timeout. */
  async next(): Promise<ProcessingResponse | undefined> {
    for (;;) {
      const m = await new Promise<ProcessingResponse | undefined>((resolve) => {
        this.waiters.push(resolve);
        this.flush();
      });
      if (m === undefined || !m.overrideMessageTimeout || Object.keys(m).length > 1) return m;
    }
  }
}

const headerMap = (pairs: Record<string, string>) => ({
  headers: Object.entries(pairs).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })),
});

const decodeValue = (h: HeaderValue) => (h.rawValue ? Buffer.from(h.rawValue).toString('latin1') : (h.value ?? ''));

function seedStage(given: NonNullable<RunStageOptions['given']>): StageDescriptor {
  const provides: Fact[] = [];
  if (given.principal) provides.push('principal');
  if (given.dataClasses) provides.push('dataClasses');
  if (given.route) provides.push('route');
  return defineStage({
    name: 'test.given',
    summary: 'seeds the facts a row gives',
    needs: [],
    provides,
    always: true,
    create: () => ({
      onRequestHeaders(ctx) {
        if (given.principal) ctx.principal = given.principal;
      },
      onRequestBody(ctx) {
        if (given.dataClasses) ctx.dataClasses = new Set(given.dataClasses);
        if (given.route) ctx.route = given.route;
      },
    }),
  });
}

export function runStageConfig(opts: Pick<RunStageOptions, 'stages' | 'config'>): Config {
  // Parsed with every stage (the schema refuses a pipeline missing a provider), then narrowed:
  // a seeded fact stands in for the missing provider, and buildPipeline checks the graph again.
  const config = configSchema.parse({ audit: { path: '-' }, ...opts.config });
  return { ...config, pipeline: { stages: [...opts.stages] } };
}

export async function runStage(opts: RunStageOptions): Promise<StageRun> {
  const config = runStageConfig(opts);
  const [hygiene, ...rest] = STAGES;
  const catalog: StageDescriptor[] = [hygiene, ...(opts.given ? [seedStage(opts.given)] : []), ...rest];
  if (opts.extraStages) catalog.push(...opts.extraStages);
  const { call, stream, send, done, record, metrics } = openFakeStream(
    config,
    catalog,
    opts.clock,
    opts.jwtKeys,
    opts.kills,
    opts.limits,
  );
  const run: Omit<StageRun, 'audit'> = { ctx: stream.ctx, answers: call.written, metrics };

  const req = opts.request;
  const body =
    req.body === undefined
      ? undefined
      : Buffer.isBuffer(req.body)
        ? req.body
        : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
  const method = req.method ?? (body === undefined ? 'GET' : 'POST');
  send({
    request: 'requestHeaders',
    requestHeaders: {
      headers: headerMap({
        ':method': method,
        ':path': req.path,
        ':authority': 'llm.local',
        ':scheme': 'http',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(body !== undefined && req.chunked !== true ? { 'content-length': String(body.length) } : {}),
        ...req.headers,
      }),
      endOfStream: body === undefined,
    },
    protocolConfig: { requestBodyMode: BodySendMode.BUFFERED, responseBodyMode: BodySendMode.NONE },
    ...(req.attributes ? { attributes: requestAttributes(req.attributes) } : {}),
  });
  const upstream: NonNullable<StageRun['upstream']> = { set: {}, removed: [] };
  const absorb = (m: ProcessingResponse | undefined, into: { set?: Record<string, string>; removed: string[] }) => {
    const common = (m?.requestHeaders ?? m?.requestBody ?? m?.responseHeaders ?? m?.responseBody)?.response;
    for (const h of common?.headerMutation?.setHeaders ?? []) {
      if (into.set && h.header) into.set[h.header.key] = decodeValue(h.header);
    }
    into.removed.push(...(common?.headerMutation?.removeHeaders ?? []));
    return common;
  };
  const refusal = (m: ProcessingResponse | undefined): boolean => {
    const ir = m?.immediateResponse;
    if (!ir) return false;
    const e = JSON.parse(Buffer.from(ir.body ?? []).toString()).error;
    run.refused = {
      status: ir.status?.code ?? 0,
      code: e.code,
      type: e.type,
      message: e.message,
      param: e.param,
      ...(e.rule_id !== undefined ? { ruleId: e.rule_id } : {}),
      headers: Object.fromEntries(
        (ir.headers?.setHeaders ?? []).filter((h) => h.header).map((h) => [h.header!.key, decodeValue(h.header!)]),
      ),
    };
    return true;
  };

  let cancelled = false;
  const cancel =
    req.cancelAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          cancelled = true;
          call.emit('cancelled');
          call.end();
        }, req.cancelAfterMs);
  let answer = await call.next();
  if (cancelled) {
    await done;
    return { ...run, audit: record()! };
  }
  if (!refusal(answer)) {
    absorb(answer, upstream);
    if (body !== undefined) {
      send({ request: 'requestBody', requestBody: { body, endOfStream: true } });
      answer = await call.next();
      if (!refusal(answer)) {
        const common = absorb(answer, upstream);
        const mutation = common?.bodyMutation;
        if (mutation?.body) upstream.body = Buffer.from(mutation.body).toString();
        else if (mutation?.clearBody) upstream.body = '';
      }
    }
  }
  if (!run.refused) {
    run.upstream = upstream;
    const res = opts.response ?? {};
    const chunks = res.chunks ?? ['{}'];
    send({
      request: 'responseHeaders',
      responseHeaders: {
        headers: {
          headers: [
            ...headerMap({ ':status': String(res.status ?? 200), 'content-type': 'application/json', ...res.headers })
              .headers,
            ...(res.extraHeaders ?? []).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })),
          ],
        },
        endOfStream: chunks.length === 0,
      },
    });
    const client: NonNullable<StageRun['client']> = { set: {}, removed: [], body: '' };
    answer = await call.next();
    if (!refusal(answer)) {
      absorb(answer, client);
      const bodyMode = answer?.modeOverride?.responseBodyMode ?? BodySendMode.NONE;
      const bytes = chunks.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c)));
      if (bodyMode === BodySendMode.NONE) {
        client.body = Buffer.concat(bytes).toString();
      } else {
        // BUFFERED: one message with the whole body; STREAMED: one per chunk.
        const all = bodyMode === BodySendMode.BUFFERED ? [Buffer.concat(bytes)] : bytes;
        const messages = res.cancelAfter === undefined ? all : all.slice(0, res.cancelAfter);
        for (let i = 0; i < messages.length && !run.refused; i++) {
          send({
            request: 'responseBody',
            responseBody: { body: messages[i], endOfStream: i === all.length - 1 },
          });
          const a = await call.next();
          if (refusal(a)) break;
          const common = absorb(a, client);
          const mutation = common?.bodyMutation;
          client.body += mutation?.body
            ? Buffer.from(mutation.body).toString()
            : mutation?.clearBody
              ? ''
              : messages[i]!.toString();
        }
      }
      run.client = client;
    }
  }
  // Envoy half-closes once the exchange is over; the stream finishes (if it has not) and settles.
  clearTimeout(cancel);
  call.emit('end');
  await done;
  return { ...run, audit: record()! };
}

export interface FakeStream {
  call: FakeCall;
  stream: ProcessStream;
  send(m: ProcessingRequest): void;
  /** Resolves once the stream finished and its audit record was written. */
  done: Promise<void>;
  record(): AuditRecord | undefined;
  metrics: Metrics;
}

/** A ProcessStream over a fake call, for state machine tests: send messages, read answers. */
export function openFakeStream(
  config: Config,
  catalog: readonly StageDescriptor[] = STAGES,
  clock: Clock = systemClock,
  jwtKeys?: KeyRegistry,
  killSet?: KillSet,
  /** The sink records go to instead of the one kept for record() (a strict one, say). */
  limitBackend?: LimitBackend,
  sink?: AuditSink,
): FakeStream {
  const metrics = new Metrics({ defaultMetrics: false });
  const keys = jwtKeys ?? new KeyRegistry({ metrics, logger, clock });
  const kills = new KillBoard();
  if (killSet) kills.replace(killSet);
  const limits = limitBackend ?? new LimitBackend({ config, logger, metrics, clock });
  const pipeline = buildPipeline(config, { logger, metrics, clock, jwtKeys: keys, kills, limits }, catalog);
  const call = new FakeCall();
  let audit: AuditRecord | undefined;
  let finished!: () => void;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  const deps: StreamDeps = {
    runtime: () => ({ config, pipeline }),
    metrics,
    logger,
    audit: sink ?? {
      write: (r) => {
        audit = r;
      },
      accepting: true,
      strict: false,
      flush: async () => {},
      close: async () => {},
    },
    admission: () => undefined,
    filterConfig: new FilterConfigWatch(logger, metrics),
    onFinished: () => finished(),
  };
  const stream = new ProcessStream(call as never, deps);
  return { call, stream, send: (m) => call.emit('data', m), done, record: () => audit, metrics };
}

/** A principal as a non-key identity would give it (a JWT caller), for rows that show a stage
 * does not depend on how the caller was identified. */
export function jwtPrincipal(over: Partial<Principal> = {}): Principal {
  return {
    id: 'user-42',
    tenant: 'acme',
    team: 'claims',
    user: 'jane@acme.example',
    roles: ['analyst'],
    attributes: { department: 'claims' },
    method: 'jwt',
    issuer: 'https://idp.acme.example',
    scope: undefined,
    ...over,
  };
}
