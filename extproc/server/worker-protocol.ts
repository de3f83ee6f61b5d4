// The messages between the gate's main thread and its gate workers (server.workers > 1). The
// main thread owns what must stay one per process: the audit writer (one file, one order), the
// admin port, the config watch and the signals. Each worker serves ext_proc on its own port.

import type { MessagePort } from 'node:worker_threads';
import type { SinkRefusal } from '../audit/refusal-tally.ts';
import type { Config } from '../config/schema.ts';
import type { KillSetData } from '../killswitch/kill-set.ts';

/** workerData of a gate worker. */
export interface WorkerInit {
  index: number;
  /** The config, with this worker's grpcAddress and unixSocket already set. */
  config: Config;
  /** Parse threads of this worker's ParsePool. */
  parseThreads: number;
  /** The kill set shared through Redis, as the main thread last heard it. */
  kills: KillSetData;
  /** The main thread's memory limit store (limits.store: memory), transferred. */
  limits: MessagePort;
}

export type ToWorker =
  | { type: 'reload'; config: Config }
  /** The main thread follows Redis; each change of the shared kill set comes whole. */
  | { type: 'kills'; kills: KillSetData }
  | { type: 'audit-accepting'; accepting: boolean }
  /** The audit batch `id` is fsynced (audit.durability strict). */
  | { type: 'audit-durable'; id: number }
  | { type: 'stats'; id: number }
  | { type: 'drain'; deadlineMs: number };

export type FromWorker =
  | { type: 'listening'; grpcPort: number }
  | { type: 'listen-failed'; field: string; message: string }
  /** Whole audit lines, newline-terminated, one or more. */
  | {
      type: 'audit';
      lines: string;
      records: number;
      /** Set in strict mode: ack it. */
      id?: number;
      /** The capture lines of these records (audit.capture), newline-terminated. */
      captures?: string;
      /** Records of refusals the audit sink caused (503 audit_unavailable), not in `lines`: the
       * main thread's writer keeps them one by one or tallies them (audit.maxRefusalBytes). */
      refusals?: SinkRefusal[];
    }
  | {
      type: 'stats';
      id: number /** registry.getMetricsAsJSON() of the worker's registry. */;
      metrics: object[];
      problems: string[];
      activeStreams: number;
    }
  | { type: 'drained'; completed: boolean; cut: number };
