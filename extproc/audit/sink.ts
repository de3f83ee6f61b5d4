// Where audit records go: the process's single writer. Records arrive serialised (from this
// thread's requests, or in batches from gate workers); the writer links each into the hash chain
// (chain.ts) in file order, appends them in batches, fsyncs as audit.durability says, writes
// signed checkpoints (checkpoint.ts) and rotates the file (files.ts). docs/audit.md states the
// format and the loss window of each durability mode.
//
// Full buffer, decided: records of requests already admitted are always kept in memory and
// written; while more than audit.maxPendingBytes wait (a slow disk), or a write is failing (a
// full disk, ENOSPC), `accepting` is false and the gate refuses NEW requests with 503 — fail
// closed, never a silent drop. A failed write keeps the unwritten rest of its batch (byte-exact,
// so a half-written line is completed, not duplicated) and retries with back-off until the disk
// takes it. close() writes everything, then a shutdown checkpoint.
//
// Capture lines (audit.capture) arrive with their records and go to the capture files
// (capture-files.ts) in the same drain, right after the batch's records: same order, same
// back-pressure and retry (a capture file that cannot be written stops new requests like the
// audit file does), and in strict mode the same wait: a request is answered only once its record
// and its capture line are both fsynced.
//
// Refusals the sink itself causes (503 audit_unavailable) are bounded apart: during a long
// outage at a high request rate one record per refusal would grow memory without bound. Up to
// audit.maxRefusalBytes of them are kept one by one and written in order like any record; past
// that, each further one is counted in a bounded RefusalTally (refusal-tally.ts) and
// lmgate_audit_refusals_summarised_total, and the tally is written as one chained
// `refusal_summary` line in the same batch as, right after, the refusals kept before it. Records
// of admitted requests are never tallied. While the sink accepts there are no such refusals, and
// a record pays one property check for this.
import { writeSync } from 'node:fs';
import { type FileHandle, open, rename } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { CaptureFiles } from './capture-files.ts';
import { Chain } from './chain.ts';
import { type CheckpointReason, CheckpointSigner, checkpointLine } from './checkpoint.ts';
import type { AuditConfig, Durability } from './config.ts';
import { rotatedFiles, rotatedName } from './files.ts';
import type { AuditRecord } from './record.ts';
import { isSinkRefusal, RefusalTally, type SinkRefusal, sinkRefusal } from './refusal-tally.ts';
import { SlowWriteGuard } from './slow-writes.ts';
import { readTail } from './tail.ts';

export interface AuditSink {
  /** onDurable: called once the record is as durable as audit.durability makes it (in strict
   * mode, fsynced); never called if the process dies first. */
  write(record: AuditRecord, onDurable?: () => void, capture?: string): void;
  /** False while the backlog is over its limit or the sink is failing. */
  readonly accepting: boolean;
  /** The request's last answer waits for its record's onDurable (durability strict). */
  readonly strict: boolean;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface FileAuditSinkOptions {
  path: string;
  maxPendingBytes: number;
  /** Bytes of sink refusals (503 audit_unavailable) kept one by one; past it they are tallied. */
  maxRefusalBytes?: number;
  logger: Logger;
  metrics: Metrics;
  durability?: Durability;
  fsyncIntervalMs?: number;
  rotateBytes?: number;
  rotateMs?: number;
  checkpointRecords?: number;
  checkpointMs?: number;
  /** Path of the Ed25519 PKCS#8 PEM key that signs checkpoints. */
  signingKey?: string;
  /** The active capture file (audit.capture.path); capture lines are refused without it. */
  capturePath?: string;
  /** For tests: the clock. */
  now?: () => number;
  /** For tests: what counts as a slow synchronous write, ms (slow-writes.ts SLOW_WRITE_MS). */
  slowWriteMs?: number;
}

/** How often the writer looks whether a checkpoint, a rotation or an fsync is due. */
const TICK_MS = 100;

/** Batches up to this size are appended with a synchronous write(2): into the page cache that
 * takes a few microseconds, where an asynchronous write costs ~40 µs of CPU in the thread-pool
 * hand-off and wake-ups (bench:alloc --cpu had it at 8.6% of the governed gate's busy time).
 * While the file is slow (SlowWriteGuard) they go through the thread pool. fsync stays
 * asynchronous. */
const SYNC_WRITE_MAX_BYTES = 256 * 1024;

export class FileAuditSink implements AuditSink {
  private readonly path: string;
  private readonly stdout: boolean;
  private readonly maxPendingBytes: number;
  private readonly maxRefusalBytes: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly durability: Durability;
  private readonly fsyncIntervalMs: number;
  private readonly rotateBytes: number;
  private readonly rotateMs: number;
  private readonly checkpointRecords: number;
  private readonly checkpointMs: number;
  private readonly signingKey: string | undefined;
  private readonly now: () => number;
  /** Whether appends may be synchronous writes now (not while the file is slow). */
  private readonly slowWrites: SlowWriteGuard;

  private opened: Promise<void> | undefined;
  private signer: CheckpointSigner | undefined;
  private chain = new Chain();
  private handle: FileHandle | undefined;
  /** Bytes in the active file, and when its first line was written. */
  private fileBytes = 0;
  private fileStartMs = 0;
  private fileFirstSeq = 0;

  private pending: string[] = [];
  /** Records in `pending` (an entry may hold several: a gate worker's batch). */
  private pendingRecords = 0;
  private pendingBytes = 0;
  private pendingWaiters: (() => void)[] = [];
  /** Capture lines of the pending records, newline-terminated, in their order. */
  private pendingCaptures = '';
  private readonly capture: CaptureFiles | undefined;
  /** Bytes of sink refusals kept one by one and not yet written; those in `pending` alone. */
  private refusalBytes = 0;
  private pendingRefusalBytes = 0;
  /** Sink refusals counted past maxRefusalBytes, until a batch takes them to write. */
  private tally: RefusalTally | undefined;

  /** Lines written since the last checkpoint, and request records among them. */
  private linesSinceCheckpoint = 0;
  private recordsSinceCheckpoint = 0;
  private lastCheckpoint: string | null = null;
  private lastCheckpointMs = 0;
  private lastSyncMs = 0;
  private unsynced = 0;

  private writing: Promise<void> | undefined;
  private failing = false;
  private retryMs = 50;
  private closed = false;
  private readonly tick: NodeJS.Timeout;

  constructor(opts: FileAuditSinkOptions) {
    this.path = opts.path;
    this.stdout = opts.path === '-';
    this.maxPendingBytes = opts.maxPendingBytes;
    this.maxRefusalBytes = opts.maxRefusalBytes ?? 8 * 1024 * 1024;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.durability = opts.durability ?? 'interval';
    this.fsyncIntervalMs = opts.fsyncIntervalMs ?? 1000;
    this.rotateBytes = opts.rotateBytes ?? 256 * 1024 * 1024;
    this.rotateMs = opts.rotateMs ?? 24 * 60 * 60 * 1000;
    this.checkpointRecords = opts.checkpointRecords ?? 10_000;
    this.checkpointMs = opts.checkpointMs ?? 60_000;
    this.signingKey = opts.signingKey;
    this.now = opts.now ?? Date.now;
    this.capture =
      opts.capturePath === undefined
        ? undefined
        : new CaptureFiles({
            path: opts.capturePath,
            rotateBytes: this.rotateBytes,
            rotateMs: this.rotateMs,
            now: this.now,
          });
    this.slowWrites = new SlowWriteGuard(opts.slowWriteMs);
    this.tick = setInterval(() => {
      if (!this.closed && this.due() !== undefined) this.kick();
    }, TICK_MS);
    this.tick.unref();
  }

  static fromConfig(config: AuditConfig, logger: Logger, metrics: Metrics): FileAuditSink {
    const { capture, ...rest } = config;
    return new FileAuditSink({ ...rest, capturePath: capture.path, logger, metrics });
  }

  get accepting(): boolean {
    return !this.failing && this.pendingBytes <= this.maxPendingBytes;
  }

  get strict(): boolean {
    return this.durability === 'strict';
  }

  /** Resumes the chain from the files on disk (recording a break after a crash) and writes the
   * start checkpoint. Runs by itself before the first write; the gate calls it at start so a
   * key or file problem stops it there, and a break is recorded even if no request comes. */
  open(): Promise<void> {
    this.opened ??= this.doOpen();
    return this.opened;
  }

  write(record: AuditRecord, onDurable?: () => void, capture?: string): void {
    const json = JSON.stringify(record);
    if (isSinkRefusal(record, capture))
      this.writeLines('', 0, onDurable, undefined, [sinkRefusal(record, `${json}\n`)]);
    // Without its newline: the chain encodes the line from this very string (Chain.encodeAll).
    else this.writeLines(json, 1, onDurable, capture === undefined ? undefined : `${capture}\n`);
  }

  /** `records` records already serialised, each line newline-terminated but perhaps the last:
   * gate workers serialise on their own thread and this process's one writer keeps the file's
   * order.
   * `refusals`: records of sink refusals (503 audit_unavailable), kept or tallied here. */
  writeLines(
    lines: string,
    records: number,
    onDurable?: () => void,
    captures?: string,
    refusals?: readonly SinkRefusal[],
  ): void {
    let held = false;
    if (lines !== '') {
      this.pendingRecords += records;
      this.pending.push(lines);
      this.pendingBytes += lines.length;
      held = true;
    }
    if (captures !== undefined && captures !== '') {
      if (this.capture === undefined) throw new Error('audit sink: a capture line, but no capture path');
      this.pendingCaptures += captures;
      this.pendingBytes += captures.length;
      held = true;
    }
    if (refusals !== undefined) for (const r of refusals) if (this.keepRefusal(r)) held = true;
    if (onDurable) {
      // Strict mode: tallied refusals are answered without waiting for a disk that is down
      // (their trace until it is back is the tally); a waiter per refusal would grow unbounded.
      if (held) this.pendingWaiters.push(onDurable);
      else queueMicrotask(onDurable);
    }
    this.metrics.auditPendingBytes.set(this.pendingBytes);
    this.kick();
  }

  /** Keeps a sink refusal's record one by one while they fit maxRefusalBytes, else counts it.
   * Once a tally is open every later refusal joins it, so its line follows every kept one. */
  private keepRefusal(r: SinkRefusal): boolean {
    if (this.tally === undefined && this.refusalBytes + r.line.length <= this.maxRefusalBytes) {
      this.pendingRecords++;
      this.pending.push(r.line);
      this.pendingBytes += r.line.length;
      this.refusalBytes += r.line.length;
      this.pendingRefusalBytes += r.line.length;
      return true;
    }
    if (this.tally === undefined) {
      this.tally = new RefusalTally();
      this.logger.warn(
        { maxRefusalBytes: this.maxRefusalBytes },
        'audit sink refusals past audit.maxRefusalBytes are counted for a refusal_summary line, not recorded one by one',
      );
    }
    this.tally.add(r);
    this.metrics.auditRefusalsSummarised.inc();
    return false;
  }

  /** One write per event-loop turn at most: records of concurrent requests share a syscall
   * (and, in strict mode, an fsync). */
  private kick(): void {
    if (!this.writing) this.writing = new Promise((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  private async doOpen(): Promise<void> {
    if (this.signingKey) this.signer = await CheckpointSigner.fromFile(this.signingKey);
    const nowMs = this.now();
    this.lastCheckpointMs = nowMs;
    this.lastSyncMs = nowMs;
    if (this.stdout) {
      await this.append(await this.checkpoint('start'));
      return;
    }
    // The chain resumes from the active file, or from the newest rotated one when the active
    // file is gone (rotated, and the process died before writing the next).
    let tail = await readTail(this.path, { truncateTorn: true });
    let inActive = tail !== undefined;
    if (!tail) {
      const rotated = (await rotatedFiles(this.path)).at(-1);
      if (rotated) tail = await readTail(rotated, { truncateTorn: false });
      inActive = false;
    }
    this.handle = await open(this.path, 'a', 0o640);
    this.fileBytes = (await this.handle.stat()).size;
    if (tail && inActive) {
      this.fileFirstSeq = tail.firstSeq;
      const first = tail.firstTime ? Date.parse(tail.firstTime) : Number.NaN;
      this.fileStartMs = Number.isNaN(first) ? nowMs : first;
    } else {
      this.fileStartMs = nowMs;
    }
    if (tail) {
      this.chain = new Chain({ seq: tail.seq, prev: tail.prev });
      this.fileFirstSeq = inActive ? tail.firstSeq : tail.seq;
      this.lastCheckpoint = tail.lastCheckpoint;
      this.linesSinceCheckpoint = tail.linesSinceCheckpoint;
      this.recordsSinceCheckpoint = tail.recordsSinceCheckpoint;
      if (!tail.clean) {
        // The previous writer did not stop cleanly (kill -9, a crash, power loss): say so in
        // the chain itself, with what was cut, before anything else is written.
        const brk = this.chain.link(
          'break',
          JSON.stringify({
            time: new Date(nowMs).toISOString(),
            reason: 'the previous writer stopped without a shutdown checkpoint',
            last_seq: tail.seq - 1,
            torn_bytes: tail.tornBytes,
          }),
        );
        this.linesSinceCheckpoint++;
        this.metrics.auditBreaks.inc();
        this.logger.warn(
          { path: this.path, lastSeq: tail.seq - 1, tornBytes: tail.tornBytes },
          'audit chain break recorded',
        );
        await this.append(`${brk}\n`);
      }
    }
    await this.append(await this.checkpoint(tail ? 'start' : 'open'));
    await this.sync();
  }

  /** A checkpoint line, newline-terminated, committed to the chain. */
  private async checkpoint(reason: CheckpointReason): Promise<string> {
    const nowMs = this.now();
    const line = await checkpointLine(
      this.chain,
      {
        time: new Date(nowMs).toISOString(),
        reason,
        file: this.stdout ? '-' : basename(this.path),
        records: this.recordsSinceCheckpoint,
        prev_checkpoint: this.lastCheckpoint,
      },
      this.signer,
    );
    this.chain.commit(line);
    this.lastCheckpoint = this.chain.prev;
    this.lastCheckpointMs = nowMs;
    this.linesSinceCheckpoint = 0;
    this.recordsSinceCheckpoint = 0;
    this.metrics.auditCheckpoints.inc();
    return `${line}\n`;
  }

  /** What housekeeping is due now, if any. */
  private due(): 'rotate' | 'count' | 'interval' | 'sync' | undefined {
    const nowMs = this.now();
    if (
      !this.stdout &&
      this.fileBytes > 0 &&
      (nowMs - this.fileStartMs >= this.rotateMs || this.fileBytes >= this.rotateBytes)
    )
      return 'rotate';
    if (this.linesSinceCheckpoint >= this.checkpointRecords) return 'count';
    if (nowMs - this.lastCheckpointMs >= this.checkpointMs) return 'interval';
    if (this.durability === 'interval' && this.unsynced > 0 && nowMs - this.lastSyncMs >= this.fsyncIntervalMs)
      return 'sync';
    return undefined;
  }

  private async drain(): Promise<void> {
    try {
      // Opening fails like a write does (a folder not there yet): retried, not accepting.
      for (;;) {
        try {
          await this.open();
          break;
        } catch (err) {
          this.opened = undefined;
          await this.failed(err);
        }
      }
      for (;;) {
        const due = this.due();
        if (due === 'rotate') await this.rotate();
        else if (due === 'count' || due === 'interval') await this.append(await this.checkpoint(due));
        if (this.pending.length === 0 && this.tally === undefined) {
          if (due === 'sync') await this.sync();
          if (this.pending.length === 0 && this.tally === undefined) break;
        }
        // Take the batch; records written meanwhile go to a fresh array. The tally goes with it:
        // every refusal kept before the tally opened is in this batch or an earlier one.
        const batch = this.pending;
        const records = this.pendingRecords;
        const waiters = this.pendingWaiters;
        const captures = this.pendingCaptures;
        const refusalBytes = this.pendingRefusalBytes;
        const tally = this.tally;
        this.pending = [];
        this.pendingRecords = 0;
        this.pendingWaiters = [];
        this.pendingCaptures = '';
        this.pendingRefusalBytes = 0;
        this.tally = undefined;
        if (!this.stdout && this.fileBytes > 0 && this.fileBytes + this.pendingBytes > this.rotateBytes)
          await this.rotate();
        let bytes = 0;
        for (const lines of batch) bytes += lines.length;
        let data = this.chain.encodeAll('request', batch);
        this.linesSinceCheckpoint += records;
        this.recordsSinceCheckpoint += records;
        if (tally !== undefined) {
          // Not a request line: checkpoints' `records` do not count it.
          const summary = `${this.chain.link('refusal_summary', tally.json(this.now()))}\n`;
          data = Buffer.concat([data, Buffer.from(summary)]);
          this.linesSinceCheckpoint++;
          this.logger.info({ refused: tally.count }, 'audit refusal_summary written');
        }
        await this.append(data);
        if (captures !== '') {
          await this.appendCapture(captures);
          this.metrics.auditCaptures.inc(lineCount(captures));
        }
        if (this.durability === 'strict') await this.sync();
        this.pendingBytes -= bytes + captures.length;
        this.refusalBytes -= refusalBytes;
        this.metrics.auditRecords.inc(records);
        this.metrics.auditPendingBytes.set(this.pendingBytes);
        for (const w of waiters) w();
      }
    } finally {
      this.writing = undefined;
    }
  }

  /** Ends the active file with a rotate checkpoint, renames it, and starts the next file with
   * an open checkpoint: its prev names the last line of the file before. */
  private async rotate(): Promise<void> {
    await this.append(await this.checkpoint('rotate'));
    await this.sync();
    await this.handle?.close();
    this.handle = undefined;
    const to = rotatedName(this.path, this.fileFirstSeq, new Date(this.now()));
    await rename(this.path, to);
    this.logger.info({ path: this.path, rotatedTo: to }, 'audit file rotated');
    this.fileBytes = 0;
    this.fileStartMs = this.now();
    this.fileFirstSeq = this.chain.seq;
    await this.append(await this.checkpoint('open'));
    await this.sync();
  }

  /** Appends all of `data`, retrying with back-off until it is written. A failed write keeps
   * exactly the bytes not yet written, so a retry completes a torn line rather than repeating
   * it; meanwhile the sink is not accepting (new requests get 503). */
  private async append(data: string | Buffer): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) {
      try {
        if (this.stdout) {
          await new Promise<void>((resolve, reject) =>
            process.stdout.write(buf.subarray(off), (err) => (err ? reject(err) : resolve())),
          );
          off = buf.length;
        } else {
          this.handle ??= await open(this.path, 'a', 0o640);
          const bytesWritten = await this.writeSome(this.handle, buf, off);
          off += bytesWritten;
          this.fileBytes += bytesWritten;
        }
      } catch (err) {
        await this.failed(err);
        continue;
      }
      this.recovered();
    }
    this.unsynced += buf.length;
  }

  /** Appends capture lines to the capture files, retrying like append(). */
  private async appendCapture(data: string): Promise<void> {
    const files = this.capture!;
    const buf = Buffer.from(data);
    let off = 0;
    while (off < buf.length) {
      try {
        off += await files.write(buf, off, this.chain.seq);
      } catch (err) {
        await this.failed(err, files.path);
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') await files.reset();
        continue;
      }
      this.recovered();
    }
  }

  /** One write(2) of buf from off: synchronous while the file takes small writes quickly (see
   * SYNC_WRITE_MAX_BYTES), else through the thread pool. Either throws the same errors. */
  private async writeSome(handle: FileHandle, buf: Buffer, off: number): Promise<number> {
    const length = buf.length - off;
    if (length <= SYNC_WRITE_MAX_BYTES && this.slowWrites.syncAllowed(this.now())) {
      const started = performance.now();
      const n = writeSync(handle.fd, buf, off, length);
      if (this.slowWrites.observe(performance.now() - started, this.now()) !== 'fast')
        this.metrics.auditSlowWrites.inc();
      return n;
    }
    return (await handle.write(buf, off, length)).bytesWritten;
  }

  private async sync(): Promise<void> {
    await this.syncCapture();
    if (this.stdout || this.unsynced === 0) return;
    for (;;) {
      try {
        this.handle ??= await open(this.path, 'a', 0o640);
        const started = performance.now();
        await this.handle.datasync();
        this.metrics.auditFsyncSeconds.observe((performance.now() - started) / 1000);
        break;
      } catch (err) {
        await this.failed(err);
      }
    }
    this.recovered();
    this.unsynced = 0;
    this.lastSyncMs = this.now();
  }

  private async syncCapture(): Promise<void> {
    const files = this.capture;
    if (files === undefined) return;
    for (;;) {
      try {
        await files.sync();
        break;
      } catch (err) {
        await this.failed(err, files.path);
      }
    }
  }

  private async failed(err: unknown, path = this.path): Promise<void> {
    this.failing = true;
    this.metrics.auditWriteErrors.inc();
    this.logger.error(
      { err: (err as Error).message, code: (err as NodeJS.ErrnoException).code, path },
      'audit write failed; retrying',
    );
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') {
      await this.handle?.close().catch(() => {});
      this.handle = undefined;
    }
    await new Promise((r) => setTimeout(r, this.retryMs));
    this.retryMs = Math.min(this.retryMs * 2, 2000);
    if (this.closed && this.retryMs >= 2000) throw err;
  }

  private recovered(): void {
    this.failing = false;
    this.retryMs = 50;
  }

  async flush(): Promise<void> {
    while (this.writing || this.pending.length > 0 || this.tally !== undefined) {
      if (!this.writing) this.writing = this.drain();
      await this.writing;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tick);
    // A sink that could not open (a bad signing key) has nothing to close.
    if (
      !(await this.open().then(
        () => true,
        () => false,
      ))
    )
      return;
    await this.flush();
    await this.append(await this.checkpoint('shutdown'));
    await this.sync();
    await this.handle?.close();
    this.handle = undefined;
    await this.capture?.close().catch((err: unknown) => this.failed(err, this.capture!.path));
  }
}

function lineCount(lines: string): number {
  let n = 0;
  for (let i = lines.indexOf('\n'); i !== -1; i = lines.indexOf('\n', i + 1)) n++;
  return n;
}
