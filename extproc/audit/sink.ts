// Where audit records go: one JSON line each, appended asynchronously in batches.
//
// Full buffer, decided: records of requests already admitted are always kept in memory and
// written; while more than audit.maxPendingBytes wait (a slow or failing disk), `accepting` is
// false and the gate refuses NEW requests with 503 — fail closed, never a silent drop. A write
// error keeps the batch and retries with back-off. close() flushes everything (SIGTERM drain).
import { type FileHandle, open } from 'node:fs/promises';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { AuditRecord } from './record.ts';

export interface AuditSink {
  write(record: AuditRecord): void;
  /** False while the backlog is over its limit or the sink is failing. */
  readonly accepting: boolean;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export class FileAuditSink implements AuditSink {
  private readonly path: string;
  private readonly maxPendingBytes: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private handle: FileHandle | undefined;
  private pending: string[] = [];
  /** Records in `pending` (an entry may hold several: a gate worker's batch). */
  private pendingRecords = 0;
  private pendingBytes = 0;
  private writing: Promise<void> | undefined;
  private failing = false;
  private retryMs = 50;
  private closed = false;

  constructor(opts: { path: string; maxPendingBytes: number; logger: Logger; metrics: Metrics }) {
    this.path = opts.path;
    this.maxPendingBytes = opts.maxPendingBytes;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
  }

  get accepting(): boolean {
    return !this.failing && this.pendingBytes <= this.maxPendingBytes;
  }

  write(record: AuditRecord): void {
    this.writeLines(`${JSON.stringify(record)}\n`, 1);
  }

  /** `records` records already serialised, each line newline-terminated: gate workers
   * serialise on their own thread and this process's one writer keeps the file's order. */
  writeLines(lines: string, records: number): void {
    this.pendingRecords += records;
    this.pending.push(lines);
    this.pendingBytes += lines.length;
    this.metrics.auditPendingBytes.set(this.pendingBytes);
    // One write per event-loop turn at most: records of concurrent requests share a syscall.
    if (!this.writing) this.writing = new Promise((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        // Take the batch; records written meanwhile go to a fresh array.
        const batch = this.pending;
        const records = this.pendingRecords;
        this.pending = [];
        this.pendingRecords = 0;
        const data = batch.join('');
        try {
          if (this.path === '-') {
            await new Promise<void>((resolve, reject) =>
              process.stdout.write(data, (err) => (err ? reject(err) : resolve())),
            );
          } else {
            this.handle ??= await open(this.path, 'a', 0o640);
            await this.handle.appendFile(data);
          }
        } catch (err) {
          this.failing = true;
          this.metrics.auditWriteErrors.inc();
          this.logger.error({ err: (err as Error).message, path: this.path }, 'audit write failed; retrying');
          this.pending = batch.concat(this.pending);
          this.pendingRecords += records;
          await this.handle?.close().catch(() => {});
          this.handle = undefined;
          await new Promise((r) => setTimeout(r, this.retryMs));
          this.retryMs = Math.min(this.retryMs * 2, 2000);
          if (this.closed && this.retryMs >= 2000) throw err;
          continue;
        }
        this.failing = false;
        this.retryMs = 50;
        this.pendingBytes -= data.length;
        this.metrics.auditRecords.inc(records);
        this.metrics.auditPendingBytes.set(this.pendingBytes);
      }
    } finally {
      this.writing = undefined;
    }
  }

  async flush(): Promise<void> {
    while (this.writing || this.pending.length > 0) {
      if (!this.writing) this.writing = this.drain();
      await this.writing;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    await this.handle?.close();
    this.handle = undefined;
  }
}
