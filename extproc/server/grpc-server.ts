// The gRPC server: the ext_proc service over TCP and, optionally, a Unix socket; the health
// service; the current runtime (config + pipeline), swapped atomically on reload; and the
// SIGTERM drain.
import { unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import type { AuditSink } from '../audit/sink.ts';
import type { Config } from '../config/schema.ts';
import { KeyRegistry } from '../identity/jwt/key-registry.ts';
import { KillBoard, type KillSet } from '../killswitch/kill-set.ts';
import { LimitBackend } from '../limits/backend.ts';
import type { PortLimitStore } from '../limits/port-store.ts';
import { ParsePool } from '../llm/parse-pool.ts';
import { buildPipeline } from '../pipeline/build.ts';
import { type GateError, refuse } from '../pipeline/errors.ts';
import { type Clock, type StageDeps, type StageDescriptor, systemClock } from '../pipeline/stage.ts';
import { STAGES } from '../pipeline/stages.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { FilterConfigWatch } from './filter-config.ts';
import { HealthService, healthServiceDefinition } from './health.ts';
import { ListenError } from './listen-error.ts';
import {
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
  type ProcessingRequest,
  type ProcessingResponse,
} from './protocol.ts';
import { ProcessStream, type Runtime } from './stream.ts';

export const extProcServiceDefinition: ServiceDefinition = {
  Process: {
    path: '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeProcessingRequest,
    requestDeserialize: decodeProcessingRequest,
    responseSerialize: encodeProcessingResponse,
    responseDeserialize: decodeProcessingResponse,
  },
};

export interface GateServerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  /** The stage catalog; defaults to the product's (stages.ts). Tests add stages that are slow,
   * fail or reserve, to exercise the state machine. */
  stages?: readonly StageDescriptor[];
  clock?: Clock;
  /** Parse threads when server.parseWorkers is unset (a gate worker gets 1). */
  parseThreads?: number;
  /** A gate worker's port to the main thread's memory limit store. */
  sharedLimits?: PortLimitStore;
}

export class GateServer {
  private runtime: Runtime;
  private readonly catalog: readonly StageDescriptor[];
  private readonly stageDeps: StageDeps;
  private readonly parsePool: ParsePool | undefined;
  readonly filterConfig: FilterConfigWatch;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly audit: AuditSink;
  private readonly grpc: Server;
  readonly health = new HealthService();
  private readonly active = new Set<ProcessStream>();
  private draining = false;
  private drainWaiters: (() => void)[] = [];
  grpcPort = 0;

  constructor(opts: GateServerOptions) {
    this.catalog = opts.stages ?? STAGES;
    // Sized once at start (a reload keeps it): large request bodies are parsed there.
    const threads =
      opts.config.server.parseWorkers ?? opts.parseThreads ?? Math.min(4, Math.max(1, availableParallelism() - 1));
    this.parsePool = threads > 0 ? new ParsePool({ threads }) : undefined;
    const clock = opts.clock ?? systemClock;
    this.stageDeps = {
      logger: opts.logger,
      metrics: opts.metrics,
      clock,
      parsePool: this.parsePool,
      kills: new KillBoard(),
      jwtKeys: new KeyRegistry({ metrics: opts.metrics, logger: opts.logger, clock }),
      // Opened once, from the first config (the Redis store's connection takes effect at the
      // next restart, as the redis section says); reloads keep the counters.
      limits: new LimitBackend({
        config: opts.config,
        logger: opts.logger,
        metrics: opts.metrics,
        clock,
        ...(opts.sharedLimits ? { sharedMemory: opts.sharedLimits } : {}),
      }),
    };
    this.runtime = { config: opts.config, pipeline: buildPipeline(opts.config, this.stageDeps, this.catalog) };
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.filterConfig = new FilterConfigWatch(opts.logger, opts.metrics);
    this.audit = opts.audit;
    // Envoy keeps one HTTP/2 connection and multiplexes every request's stream on it.
    this.grpc = new Server({
      'grpc.max_concurrent_streams': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    allowEnvoyStreamResets(this.grpc, opts.logger);
    const deps = {
      runtime: () => this.runtime,
      metrics: this.metrics,
      logger: this.logger,
      audit: this.audit,
      filterConfig: this.filterConfig,
      admission: (): GateError | undefined => {
        if (this.draining) return refuse('draining', 'The gateway is shutting down; retry the request.');
        if (!this.audit.accepting)
          return refuse('audit_unavailable', 'The audit trail is not keeping up; request refused.');
        return undefined;
      },
      onFinished: (s: ProcessStream) => {
        this.active.delete(s);
        if (this.draining && this.active.size === 0) for (const w of this.drainWaiters.splice(0)) w();
      },
    };
    this.grpc.addService(extProcServiceDefinition, {
      Process: (call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
        this.active.add(new ProcessStream(call, deps));
      },
    });
    this.grpc.addService(healthServiceDefinition, this.health.handlers);
  }

  get config(): Config {
    return this.runtime.config;
  }

  get activeStreams(): number {
    return this.active.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** The kill set shared through Redis, as the thread that follows Redis last heard it; new
   * requests check against it at once, whatever their config snapshot. */
  setKills(set: KillSet): void {
    this.stageDeps.kills.replace(set);
  }

  /** Swap in a new config: streams already open keep the snapshot they started with. */
  reload(config: Config): void {
    this.runtime = { config, pipeline: buildPipeline(config, this.stageDeps, this.catalog) };
  }

  /** Throws ListenError naming the config field when an address cannot be bound. */
  async start(): Promise<{ grpcPort: number }> {
    const { grpcAddress, unixSocket } = this.runtime.config.server;
    this.grpcPort = await this.bind(grpcAddress).catch((err: unknown) => {
      throw new ListenError('server.grpcAddress', grpcAddress, err);
    });
    if (unixSocket) {
      await unlink(unixSocket).catch(() => {});
      await this.bind(`unix:${unixSocket}`).catch((err: unknown) => {
        throw new ListenError('server.unixSocket', unixSocket, err);
      });
    }
    this.health.setServing(true);
    return { grpcPort: this.grpcPort };
  }

  private bind(address: string): Promise<number> {
    return new Promise((resolve, reject) =>
      this.grpc.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => {
        if (err) return reject(err);
        watchConnections(this.grpc, this.metrics);
        resolve(port);
      }),
    );
  }

  /** Stop taking new requests (they get 503), let in-flight ones finish within the deadline,
   * then cut the rest (each still gets its audit record) and stop the server. */
  async drain(deadlineMs: number): Promise<{ completed: boolean; cut: number }> {
    this.draining = true;
    this.health.setServing(false);
    let cut = 0;
    if (this.active.size > 0) {
      const done = new Promise<boolean>((resolve) => this.drainWaiters.push(() => resolve(true)));
      const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, deadlineMs, false).unref());
      if (!(await Promise.race([done, timeout]))) {
        cut = this.active.size;
        for (const s of [...this.active]) s.abort('drain deadline reached');
        // A cut stream's stages settle (bounded twice by settleTimeoutMs: the late hook, then
        // onEnd) before its record is written; the audit sink closes only after that.
        if (this.active.size > 0) {
          const settled = new Promise<boolean>((resolve) => this.drainWaiters.push(() => resolve(true)));
          const bound = 2 * this.runtime.config.server.settleTimeoutMs + 100;
          await Promise.race([settled, new Promise<boolean>((r) => setTimeout(r, bound, false).unref())]);
        }
      }
    }
    this.health.endWatches();
    await new Promise<void>((resolve) => this.grpc.tryShutdown(() => resolve()));
    this.stageDeps.jwtKeys.close();
    this.stageDeps.limits?.close();
    await this.parsePool?.close();
    return { completed: cut === 0, cut };
  }

  forceShutdown(): void {
    this.grpc.forceShutdown();
    this.stageDeps.jwtKeys.close();
    this.stageDeps.limits?.close();
    void this.parsePool?.close();
  }
}

/** Envoy resets (RST_STREAM) every ext_proc stream once its HTTP request is over, so a busy
 * gate receives one reset per request on each connection. Node's HTTP/2 server treats more
 * than 1000 resets in a burst, then 33 a second, as a rapid-reset attack (CVE-2023-44487) and
 * drops the connection with GOAWAY, failing every request in flight on it: under load Envoy
 * answered 500 every ~1300 requests per connection. The limit is raised well above what one
 * gate process can serve (~2000 requests a second on one core), so it still stops a real
 * flood. grpc-js has no option for it: its http2 server options are set before listen. */
export const STREAM_RESETS_PER_SECOND = 20_000;

function allowEnvoyStreamResets(server: Server, logger: Logger): void {
  const options = (server as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
  if (typeof options !== 'object' || options === null) {
    // A grpc-js release that moved the field: test/integration/stream-resets.test.ts fails.
    logger.error('cannot raise the HTTP/2 stream reset limit; under load Envoy will see 500s');
    return;
  }
  options.streamResetBurst = STREAM_RESETS_PER_SECOND;
  options.streamResetRate = STREAM_RESETS_PER_SECOND;
  // Request bodies arrive as one message of up to maxRequestBodyBytes. With HTTP/2's default
  // 16 KiB frames and 64 KiB windows a 4 MiB body is 256 frames, each a trip through JS, and
  // the window refills only as the event loop gets to them; larger frames and windows move the
  // same bytes in a few frames.
  const settings = (options.settings ?? {}) as Record<string, unknown>;
  settings.maxFrameSize = HTTP2_MAX_FRAME_SIZE;
  settings.initialWindowSize = HTTP2_STREAM_WINDOW;
  options.settings = settings;
}

export const HTTP2_MAX_FRAME_SIZE = 1024 * 1024;
export const HTTP2_STREAM_WINDOW = 8 * 1024 * 1024;
/** The connection's receive window (all streams together); HTTP/2 starts it at 64 KiB. */
export const HTTP2_CONNECTION_WINDOW = 32 * 1024 * 1024;

type Http2Stream = { rstCode?: number; once(e: 'close', f: () => void): void };
type SessionSource = {
  on(e: 'session', f: (s: { setLocalWindowSize?(n: number): void }) => void): void;
  on(e: 'stream', f: (s: Http2Stream) => void): void;
};
const watched = new WeakSet<SessionSource>();

/** Each of grpc-js's listening http2 servers gets, once: every new connection's receive window
 * widened (grpc-js has no option for it), and every stream's reset code counted. Envoy resets
 * each ext_proc stream with INTERNAL_ERROR when its request ends unless graceful close is on
 * (envoy/envoy.yaml's layered_runtime), and Node's HTTP/2 then builds an Error with a stack per
 * request; the counter shows an Envoy that does that. */
function watchConnections(server: Server, metrics: Metrics): void {
  const servers = (server as unknown as { http2Servers?: Map<SessionSource, unknown> }).http2Servers;
  for (const s of servers?.keys() ?? []) {
    if (watched.has(s)) continue;
    watched.add(s);
    s.on('session', (session) => session.setLocalWindowSize?.(HTTP2_CONNECTION_WINDOW));
    s.on('stream', (stream) =>
      stream.once('close', () => {
        const code = stream.rstCode ?? 0;
        if (code !== 0) metrics.streamResets.labels(resetName(code)).inc();
      }),
    );
  }
}

/** RFC 9113 error codes, as a bounded label. */
function resetName(code: number): string {
  switch (code) {
    case 2:
      return 'INTERNAL_ERROR';
    case 7:
      return 'REFUSED_STREAM';
    case 8:
      return 'CANCEL';
    default:
      return 'OTHER';
  }
}
