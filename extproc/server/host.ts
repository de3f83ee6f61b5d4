// What `lm-gate serve` drives: one GateServer on the main thread (server.workers: 1) or a
// WorkerPool of gate workers. Both start, reload, drain, answer /metrics and /readyz alike.
import type { Config } from '../config/schema.ts';
import type { KillSet } from '../killswitch/kill-set.ts';
import type { MetricsSource, ReadyState } from '../telemetry/admin.ts';
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

/** /readyz: listening on every worker, not draining, and the audit sink accepting. The sink is
 * read before the workers are asked: readiness() tells them its state first, so ready means
 * every worker has heard that it accepts. Read only after, a sink that recovered meanwhile made
 * the gate ready while a worker still refused for up to the 20 ms the workers' watch takes. */
export async function gateReadiness(
  host: GateHost,
  audit: { readonly accepting: boolean },
  count: number,
): Promise<ReadyState> {
  const accepting = audit.accepting;
  const { listening, problems: warnings } = await host.readiness();
  if (host.isDraining) return { ready: false, reason: 'draining', warnings };
  if (!accepting || !audit.accepting) return { ready: false, reason: 'audit sink not accepting', warnings };
  if (listening < count) return { ready: false, reason: `${listening} of ${count} gate workers listening`, warnings };
  return { ready: true, warnings };
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
