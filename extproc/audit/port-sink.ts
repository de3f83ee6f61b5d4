// The audit sink of a gate worker: each record is serialised here, on the worker's thread, and
// posted to the main thread, whose one FileAuditSink writes every worker's records in the order
// they arrive. Records are posted in batches, at most BATCH_MS apart: a message per record woke
// the main thread once per request (0.2 ms of CPU each at 300 req/s). Whether the sink accepts
// new requests is the main thread's to say: it posts a change as soon as it sees one.
//
// Strict durability: a batch is posted on the next event-loop turn (its requests wait for it)
// with an id, and the main thread answers `audit-durable` with that id once it is fsynced; the
// batch's requests then give their last answers.
//
// Refusals the audit sink caused (503 audit_unavailable) travel apart from the other records,
// with the facts a tally keys on: the main thread's writer bounds them (audit.maxRefusalBytes,
// sink.ts) without parsing a line. While the sink accepts there are none.
import type { MessagePort } from 'node:worker_threads';
import type { FromWorker } from '../server/worker-protocol.ts';
import type { AuditRecord } from './record.ts';
import { isSinkRefusal, type SinkRefusal, sinkRefusal } from './refusal-tally.ts';
import type { AuditSink } from './sink.ts';

/** The longest a record waits in a worker before it is posted. */
export const BATCH_MS = 5;

export class PortAuditSink implements AuditSink {
  private readonly port: MessagePort;
  readonly strict: boolean;
  private lines = '';
  private records = 0;
  /** Capture lines of the batch's records (audit.capture), in their order. */
  private captures = '';
  private refusals: SinkRefusal[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private waiters: (() => void)[] = [];
  private nextId = 0;
  /** Batches posted and not yet durable, by id. */
  private readonly unacked = new Map<number, (() => void)[]>();
  accepting = true;

  constructor(port: MessagePort, strict = false) {
    this.port = port;
    this.strict = strict;
  }

  write(record: AuditRecord, onDurable?: () => void, capture?: string): void {
    if (isSinkRefusal(record, capture)) this.refusals.push(sinkRefusal(record, `${JSON.stringify(record)}\n`));
    else {
      this.lines += `${JSON.stringify(record)}\n`;
      this.records++;
    }
    if (capture !== undefined) this.captures += `${capture}\n`;
    if (onDurable) this.waiters.push(onDurable);
    this.timer ??= this.strict ? setImmediate(() => this.post()) : setTimeout(() => this.post(), BATCH_MS);
  }

  private post(): void {
    if (this.timer !== undefined) {
      if (this.strict) clearImmediate(this.timer as NodeJS.Immediate);
      else clearTimeout(this.timer as NodeJS.Timeout);
    }
    this.timer = undefined;
    if (this.lines === '' && this.refusals.length === 0) return;
    const message: FromWorker = { type: 'audit', lines: this.lines, records: this.records };
    if (this.captures !== '') message.captures = this.captures;
    if (this.refusals.length > 0) {
      message.refusals = this.refusals;
      this.refusals = [];
    }
    if (this.strict) {
      message.id = this.nextId++;
      this.unacked.set(message.id, this.waiters);
      this.waiters = [];
    } else {
      // Without strict durability a record counts as done once it is handed over.
      for (const w of this.waiters) w();
      this.waiters = [];
    }
    this.lines = '';
    this.records = 0;
    this.captures = '';
    this.port.postMessage(message);
  }

  /** The main thread fsynced batch `id`. */
  durable(id: number): void {
    const waiters = this.unacked.get(id);
    this.unacked.delete(id);
    for (const w of waiters ?? []) w();
  }

  /** Posts what is batched. Messages arrive in order: the main thread holds every record
   * before it reads anything this worker posts later (drained). */
  async flush(): Promise<void> {
    this.post();
  }

  async close(): Promise<void> {
    this.post();
  }
}
