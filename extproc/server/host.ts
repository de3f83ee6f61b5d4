// What `lm-gate serve` drives: one GateServer on the main thread (server.workers: 1) or a
// WorkerPool of gate workers. Both start, reload, drain, answer /metrics and /readyz alike.
import type { Config } from '../config/schema.ts';
import type { KillSet } from '../killswitch/kill-set.ts';
import type { MetricsSource } from '../telemetry/admin.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { GateServer } from './grpc-server.ts';

export interface GateHost extends MetricsSource {
  start(): Promise<{ grpcPorts: number[] }>;
  reload(config: Config): void;
  /** The kill set shared through Redis changed: every gate thread checks against it at once. */
  setKills(set: KillSet): void;
  drain(deadlineMs: number): Promise<{ completed: boolean; cut: number }>;
  forceShutdown(): void;
  readonly isDraining: boolean;
  /** Gate servers listening, and the Envoy filter problems they have seen. */
  readiness(): Promise<{ listening: number; problems: string[] }>;
  activeStreams(): Promise<number>;
}

export class SingleGate implements GateHost {
  private readonly gate: GateServer;
  private readonly metrics: Metrics;
  readonly contentType: string;

  constructor(gate: GateServer, metrics: Metrics) {
    this.gate = gate;
    this.metrics = metrics;
    this.contentType = metrics.contentType;
  }

  async start(): Promise<{ grpcPorts: number[] }> {
    const { grpcPort } = await this.gate.start();
    return { grpcPorts: [grpcPort] };
  }

  reload(config: Config): void {
    this.gate.reload(config);
  }

  setKills(set: KillSet): void {
    this.gate.setKills(set);
  }

  drain(deadlineMs: number): Promise<{ completed: boolean; cut: number }> {
    return this.gate.drain(deadlineMs);
  }

  forceShutdown(): void {
    this.gate.forceShutdown();
  }

  get isDraining(): boolean {
    return this.gate.isDraining;
  }

  metricsText(): Promise<string> {
    return this.metrics.metricsText();
  }

  async readiness(): Promise<{ listening: number; problems: string[] }> {
    return { listening: 1, problems: this.gate.filterConfig.problems };
  }

  async activeStreams(): Promise<number> {
    return this.gate.activeStreams;
  }
}
