// A gate worker thread (server.workers > 1): one GateServer on this worker's own port, its
// own metrics registry (no process metrics: the main thread has those) and a PortAuditSink.
// Everything it is told comes from the main thread (worker-protocol.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { PortAuditSink } from '../audit/port-sink.ts';
import { KillSet } from '../killswitch/kill-set.ts';
import { PortLimitStore } from '../limits/port-store.ts';
import { createLogger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { GateServer } from './grpc-server.ts';
import { ListenError } from './listen-error.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const port = parentPort;
if (!port) throw new Error('worker-main.ts runs only as a gate worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);

const logger = createLogger(init.config.logging.level).child({ worker: init.index });
const metrics = new Metrics({ defaultMetrics: false });
const audit = new PortAuditSink(port, init.config.audit.durability === 'strict');
const gate = new GateServer({
  config: init.config,
  logger,
  metrics,
  audit,
  parseThreads: init.parseThreads,
  sharedLimits: new PortLimitStore(init.limits),
});
gate.setKills(KillSet.fromData(init.kills));

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'reload':
      gate.reload(m.config);
      logger.level = m.config.logging.level;
      break;
    case 'kills':
      gate.setKills(KillSet.fromData(m.kills));
      break;
    case 'audit-accepting':
      audit.accepting = m.accepting;
      break;
    case 'audit-durable':
      audit.durable(m.id);
      break;
    case 'stats':
      void metrics.registry.getMetricsAsJSON().then((json) =>
        post({
          type: 'stats',
          id: m.id,
          metrics: json,
          problems: gate.filterConfig.problems,
          activeStreams: gate.activeStreams,
        }),
      );
      break;
    case 'drain':
      void gate.drain(m.deadlineMs).then(async ({ completed, cut }) => {
        await audit.flush();
        post({ type: 'drained', completed, cut });
        logger.flush();
        port.close();
      });
      break;
  }
});

try {
  const { grpcPort } = await gate.start();
  post({ type: 'listening', grpcPort });
} catch (err) {
  gate.forceShutdown();
  if (!(err instanceof ListenError)) throw err;
  post({ type: 'listen-failed', field: err.field, message: err.message });
  port.close();
}
