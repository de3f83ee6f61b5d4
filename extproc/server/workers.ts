// The gate's workers (server.workers > 1): N threads of this process, each a GateServer on its
// own port, so one gate uses N cores. Envoy spreads streams across them: its ext_proc cluster
// lists one endpoint per worker (LEAST_REQUEST). Threads, not processes: they share the Node
// binary's pages and this process's audit writer, admin port and config watch.
//
// What stays exact across workers: the audit file has one writer (this thread), in the order
// records arrive; /metrics sums every worker's registry with this thread's; a reload reaches
// every worker. A worker that dies is restarted on its port after a second (its in-flight
// requests die with it, as with a crashed single-process gate); Envoy's health check takes its
// endpoint out meanwhile.
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { AggregatorRegistry } from 'prom-client';
import type { FileAuditSink } from '../audit/sink.ts';
import type { Config } from '../config/schema.ts';
import { KillSet } from '../killswitch/kill-set.ts';
import { MemoryLimitStore } from '../limits/memory-store.ts';
import { serveLimitStore } from '../limits/port-store.ts';
import { systemClock } from '../pipeline/stage.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { GateHost } from './host.ts';
import { ListenError } from './listen-error.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker-main.ts' : './worker-main.js', import.meta.url);

/** server.workers as a number: `auto` is one per core. */
export function workerCount(config: Config): number {
  const w = config.server.workers;
  return w === 'auto' ? availableParallelism() : w;
}

/** Worker `index`'s listeners: grpcAddress's port plus the index (port 0 stays 0: each worker
 * picks its own), and unixSocket with -<index> before its extension. */
export function workerAddresses(
  server: Config['server'],
  index: number,
): { grpcAddress: string; unixSocket: string | undefined } {
  const i = server.grpcAddress.lastIndexOf(':');
  const port = Number(server.grpcAddress.slice(i + 1));
  const grpcAddress = `${server.grpcAddress.slice(0, i)}:${port === 0 ? 0 : port + index}`;
  let unixSocket = server.unixSocket;
  if (unixSocket !== undefined) {
    const ext = extname(unixSocket);
    unixSocket = `${unixSocket.slice(0, unixSocket.length - ext.length)}-${index}${ext}`;
  }
  return { grpcAddress, unixSocket };
}

function workerConfig(config: Config, index: number): Config {
  return { ...config, server: { ...config.server, ...workerAddresses(config.server, index) } };
}

interface Slot {
  index: number;
  worker: Worker;
  grpcPort: number;
  listening: boolean;
}

export interface WorkerPoolOptions {
  config: Config;
  count: number;
  logger: Logger;
  metrics: Metrics;
  audit: FileAuditSink;
}

export class WorkerPool implements GateHost {
  private config: Config;
  private readonly count: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly audit: FileAuditSink;
  private readonly slots: Slot[] = [];
  /** limits.store: memory, one for every worker so limits stay exact across them. Kept for the
   * process: a restarted worker counts on where the others are. */
  private readonly limits: MemoryLimitStore;
  private readonly statsWaiters = new Map<number, (m: FromWorker & { type: 'stats' }) => void>();
  private readonly drainWaiters = new Map<Worker, (m: FromWorker & { type: 'drained' }) => void>();
  private statsSeq = 0;
  /** The last shared kill set, for workers started (or restarted) after it arrived. */
  private kills = KillSet.EMPTY;
  private accepting = true;
  private readonly acceptingWatch: NodeJS.Timeout;
  private draining = false;
  private stopped = false;
  readonly contentType: string;

  constructor(opts: WorkerPoolOptions) {
    this.config = opts.config;
    this.count = opts.count;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.audit = opts.audit;
    this.contentType = opts.metrics.contentType;
    this.limits = new MemoryLimitStore({ maxEntries: opts.config.limits.maxMemoryEntries, clock: systemClock });
    // The audit sink has no event for it; a backlog builds over many records, so a 20 ms look
    // tells the workers soon enough to refuse new requests.
    this.acceptingWatch = setInterval(() => this.pushAccepting(), 20).unref();
  }

  get grpcPorts(): number[] {
    return this.slots.map((s) => s.grpcPort);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Starts every worker and waits until each listens; the first that cannot throws its
   * ListenError (the others are stopped). */
  async start(): Promise<{ grpcPorts: number[] }> {
    try {
      await Promise.all(Array.from({ length: this.count }, (_, i) => this.spawn(i)));
    } catch (err) {
      this.forceShutdown();
      throw err;
    }
    return { grpcPorts: this.grpcPorts };
  }

  private spawn(index: number): Promise<Slot> {
    const { port1, port2: limitPort } = new MessageChannel();
    serveLimitStore(port1, this.limits);
    const init: WorkerInit = {
      index,
      config: workerConfig(this.config, index),
      parseThreads: this.config.server.parseWorkers ?? 1,
      kills: this.kills.toData(),
      limits: limitPort,
    };
    const worker = new Worker(WORKER_URL, {
      workerData: init,
      transferList: [limitPort],
      name: `lm-gate-worker-${index}`,
    });
    const slot: Slot = { index, worker, grpcPort: 0, listening: false };
    this.slots[index] = slot;
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'audit':
            // Strict durability: the worker's requests wait for this batch's fsync.
            this.audit.writeLines(
              m.lines,
              m.records,
              m.id === undefined ? undefined : () => this.post(slot, { type: 'audit-durable', id: m.id! }),
              m.captures,
              m.refusals,
            );
            break;
          case 'listening':
            slot.grpcPort = m.grpcPort;
            slot.listening = true;
            if (!this.accepting) this.post(slot, { type: 'audit-accepting', accepting: false });
            resolve(slot);
            break;
          case 'listen-failed':
            reject(ListenError.relayed(m.field, m.message));
            break;
          case 'stats':
            this.statsWaiters.get(m.id)?.(m);
            break;
          case 'drained':
            this.drainWaiters.get(worker)?.(m);
            break;
        }
      });
      worker.on('error', (err) => {
        this.logger.error({ worker: index, err: err.message, stack: err.stack }, 'gate worker failed');
        reject(err);
      });
      worker.on('exit', (code) => {
        slot.listening = false;
        port1.close();
        reject(new Error(`gate worker ${index} exited (code ${code}) before it listened`));
        this.drainWaiters.get(worker)?.({ type: 'drained', completed: false, cut: 0 });
        if (this.stopped || this.draining || this.slots[index] !== slot) return;
        this.metrics.workerRestarts.inc();
        this.logger.error({ worker: index, code }, 'gate worker exited; restarting it in 1 s');
        setTimeout(() => {
          if (this.stopped || this.draining) return;
          this.spawn(index).catch((err: unknown) =>
            this.logger.error({ worker: index, err: String(err) }, 'gate worker restart failed'),
          );
        }, 1000).unref();
      });
    });
  }

  private post(slot: Slot, m: ToWorker): void {
    slot.worker.postMessage(m);
  }

  private pushAccepting(): void {
    const accepting = this.audit.accepting;
    if (accepting === this.accepting) return;
    this.accepting = accepting;
    for (const s of this.slots) this.post(s, { type: 'audit-accepting', accepting });
  }

  reload(config: Config): void {
    this.config = config;
    for (const s of this.slots) this.post(s, { type: 'reload', config: workerConfig(config, s.index) });
  }

  setKills(set: KillSet): void {
    this.kills = set;
    const kills = set.toData();
    for (const s of this.slots) if (s) this.post(s, { type: 'kills', kills });
  }

  /** Every listening worker's metrics, filter problems and streams; a worker that does not
   * answer within a second is left out. */
  private async stats(): Promise<(FromWorker & { type: 'stats' })[]> {
    const live = this.slots.filter((s) => s.listening);
    const answers = await Promise.all(
      live.map(
        (s) =>
          new Promise<(FromWorker & { type: 'stats' }) | undefined>((resolve) => {
            const id = ++this.statsSeq;
            const timer = setTimeout(() => {
              this.statsWaiters.delete(id);
              resolve(undefined);
            }, 1000);
            this.statsWaiters.set(id, (m) => {
              clearTimeout(timer);
              this.statsWaiters.delete(id);
              resolve(m);
            });
            this.post(s, { type: 'stats', id });
          }),
      ),
    );
    return answers.filter((a) => a !== undefined);
  }

  /** Prometheus text: this thread's registry (process, audit, reloads) plus every worker's,
   * summed by AggregatorRegistry (gauges by their own aggregator). */
  async metricsText(): Promise<string> {
    const stats = await this.stats();
    const all = [await this.metrics.registry.getMetricsAsJSON(), ...stats.map((s) => s.metrics)];
    return AggregatorRegistry.aggregate(all).metrics();
  }

  /** /readyz: every worker listening; the filter problems any worker has seen. */
  async readiness(): Promise<{ listening: number; problems: string[] }> {
    // The sink's state goes out first: a worker handles its messages in order, so once its
    // stats answer arrives it has the accepting flag too, and a ready gate (the sink recovered)
    // never has a worker still refusing for the audit (the watch only polls every 20 ms).
    this.pushAccepting();
    const stats = await this.stats();
    return {
      listening: this.slots.filter((s) => s.listening).length,
      problems: [...new Set(stats.flatMap((s) => s.problems))],
    };
  }

  get workers(): number {
    return this.count;
  }

  async activeStreams(): Promise<number> {
    return (await this.stats()).reduce((n, s) => n + s.activeStreams, 0);
  }

  /** Every worker drains as a single gate does (server.drainTimeoutMs); their records are all
   * in the audit sink once this resolves. */
  async drain(deadlineMs: number): Promise<{ completed: boolean; cut: number }> {
    this.draining = true;
    clearInterval(this.acceptingWatch);
    const results = await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<FromWorker & { type: 'drained' }>((resolve) => {
            if (!s.listening) return resolve({ type: 'drained', completed: true, cut: 0 });
            this.drainWaiters.set(s.worker, resolve);
            this.post(s, { type: 'drain', deadlineMs });
          }),
      ),
    );
    this.stopped = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    return { completed: results.every((r) => r.completed), cut: results.reduce((n, r) => n + r.cut, 0) };
  }

  forceShutdown(): void {
    this.stopped = true;
    clearInterval(this.acceptingWatch);
    for (const s of this.slots) void s?.worker.terminate();
  }
}
