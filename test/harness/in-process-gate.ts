// The gate's server in the test process, over a real gRPC port: for integration tests that
// need to see its internals (drain, slow stages) while speaking real ext_proc to it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { FileAuditSink } from '../../extproc/audit/sink.ts';
import { type Config, configSchema } from '../../extproc/config/schema.ts';
import type { StageDescriptor } from '../../extproc/pipeline/stage.ts';
import { STAGES } from '../../extproc/pipeline/stages.ts';
import { GateServer } from '../../extproc/server/grpc-server.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { ExtProcClient } from './ext-proc-client.ts';
import { gateConfig, type TestKey } from './gate.ts';
import { freePort, waitFor } from './ports.ts';
import { tempDir } from './temp-dirs.ts';

export interface InProcessGate {
  server: GateServer;
  client: ExtProcClient;
  config: Config;
  audit: FileAuditSink;
  metrics: Metrics;
  logs: string[];
  auditRecords(): Promise<Record<string, any>[]>;
  /** Wait for n audit records in total. */
  waitAudit(n: number): Promise<Record<string, any>[]>;
  stop(): Promise<void>;
}

export async function startInProcessGate(
  keys: TestKey[],
  opts: {
    extra?: Record<string, unknown>;
    unixSocket?: boolean;
    /** Stages to run after the product's, for tests of the state machine (mark them
     * `always: true`: the config only lists product stages). */
    extraStages?: readonly StageDescriptor[];
  } = {},
): Promise<InProcessGate> {
  const dir = await tempDir('lm-gate-it-');
  const auditPath = join(dir, 'audit.log');
  const config = configSchema.parse(
    gateConfig({
      grpcPort: await freePort(),
      adminPort: await freePort(),
      auditPath,
      keys,
      ...(opts.unixSocket ? { unixSocket: join(dir, 'gate.sock') } : {}),
      ...(opts.extra ? { extra: opts.extra } : {}),
    }),
  );
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(l) });
  const metrics = new Metrics({ defaultMetrics: false });
  const audit = FileAuditSink.fromConfig(config.audit, logger, metrics);
  const server = new GateServer({
    config,
    logger,
    metrics,
    audit,
    ...(opts.extraStages ? { stages: [...STAGES, ...opts.extraStages] } : {}),
  });
  const { grpcPort } = await server.start();
  const client = new ExtProcClient(`127.0.0.1:${grpcPort}`);
  const auditRecords = async () =>
    (await readFile(config.audit.path, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>)
      .filter((r) => r.type === 'request'); // checkpoints and breaks are chain lines, not records
  return {
    server,
    client,
    config,
    audit,
    metrics,
    logs,
    auditRecords,
    waitAudit: (n) =>
      waitFor(
        `${n} audit records`,
        async () => {
          const r = await auditRecords();
          return r.length >= n ? r : undefined;
        },
        5000,
      ),
    async stop() {
      client.close();
      server.forceShutdown();
      await audit.close();
    },
  };
}

/** One in-process gate shared by a test file's tests: started before them, stopped after, and
 * checked after each test to have no stream still in flight. `expectAudit(n)` says how many
 * records the test's streams must have added, waits for exactly those and returns them. */
export function gateForFile(keys: TestKey[]): {
  readonly gate: InProcessGate;
  expectAudit(n: number): Promise<Record<string, any>[]>;
} {
  let gate: InProcessGate | undefined;
  let count = 0;
  beforeAll(async () => {
    gate = await startInProcessGate(keys);
  });
  afterAll(async () => {
    await gate?.stop();
  });
  afterEach(async () => {
    await new Promise((r) => setTimeout(r, 20));
    expect(gate?.server.activeStreams).toBe(0);
  });
  return {
    get gate(): InProcessGate {
      if (gate === undefined) throw new Error('gateForFile: the gate starts in beforeAll');
      return gate;
    },
    async expectAudit(n: number) {
      if (gate === undefined) throw new Error('gateForFile: the gate starts in beforeAll');
      count += n;
      const records = await gate.waitAudit(count);
      expect(records).toHaveLength(count);
      return records.slice(count - n);
    },
  };
}
