// The gRPC server: the ext_proc service over TCP and, optionally, a Unix socket; the health
// service; the current runtime (config + pipeline), swapped atomically on reload; and the
// SIGTERM drain.
import { availableParallelism } from 'node:os';
import type { ServiceDefinition } from '@grpc/grpc-js';
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
import { H2GrpcServer, type ServerCall } from './h2-grpc.ts';
import { HealthService } from './health.ts';
import { ListenError } from './listen-error.ts';
import {
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
  type ProcessingRequest,
  type ProcessingResponse,
} from './protocol.ts';
import { encodeFramedProcessingResponse } from './response-codec.ts';
import { ProcessStream, type Runtime } from './stream.ts';

export {
  HTTP2_CONNECTION_WINDOW,
  HTTP2_MAX_FRAME_SIZE,
  HTTP2_STREAM_WINDOW,
  STREAM_RESETS_PER_SECOND,
} from './h2-grpc.ts';

export const EXT_PROC_PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
/** Request bodies arrive as one message: up to the largest maxRequestBodyBytes, with room. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The ext_proc service as grpc-js clients describe it (the tests' Envoy stand-in). */
export const extProcServiceDefinition: ServiceDefinition = {
  Process: {
    path: EXT_PROC_PATH,
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
  private readonly grpc: H2GrpcServer;
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
    const metrics = this.metrics;
    this.grpc = new H2GrpcServer({
      methods: {
        [EXT_PROC_PATH]: {
          codec: { decode: decodeProcessingRequest, encodeFramed: encodeFramedProcessingResponse } as never,
          handle: (call) => {
            this.active.add(new ProcessStream(call as ServerCall<ProcessingRequest, ProcessingResponse>, deps));
          },
        },
        ...this.health.methods,
      },
      maxMessageBytes: MAX_MESSAGE_BYTES,
      // Envoy resets each ext_proc stream with INTERNAL_ERROR when its request ends unless
      // graceful close is on (envoy/envoy.yaml's layered_runtime), and Node's HTTP/2 then builds
      // an Error with a stack per request; the counter shows an Envoy that does that.
      onStreamReset: (code) => metrics.streamResets.labels(resetName(code)).inc(),
    });
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
      await this.bind(`unix:${unixSocket}`).catch((err: unknown) => {
        throw new ListenError('server.unixSocket', unixSocket, err);
      });
    }
    this.health.setServing(true);
    return { grpcPort: this.grpcPort };
  }

  private bind(address: string): Promise<number> {
    return this.grpc.listen(address);
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
    await this.grpc.close();
    this.stageDeps.jwtKeys.close();
    this.stageDeps.limits?.close();
    await this.parsePool?.close();
    return { completed: cut === 0, cut };
  }

  forceShutdown(): void {
    this.grpc.destroy();
    this.stageDeps.jwtKeys.close();
    this.stageDeps.limits?.close();
    void this.parsePool?.close();
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
