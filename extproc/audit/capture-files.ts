// The capture files (audit.capture.path): one JSON line per captured request, appended by the
// audit sink's one writer in the order of the records that link them, rotated by the audit
// file's size and age settings and named PATH.<chain seq>-<UTC time> (files.ts) so that sorting
// the names sorts them in chain order. They are not chained: each line is held by the SHA-256
// its audit record carries, so a line or a whole file can be deleted (retention, erasure)
// without breaking the audit chain, and `audit verify` reports it as erased.
//
// Errors are thrown to the sink, which retries them like its own writes (fail closed: new
// requests get 503 while captures cannot be written; nothing is dropped).
import { type FileHandle, open, rename } from 'node:fs/promises';
import { rotatedName } from './files.ts';

export interface CaptureFilesOptions {
  path: string;
  rotateBytes: number;
  rotateMs: number;
  now: () => number;
}

export class CaptureFiles {
  readonly path: string;
  private readonly rotateBytes: number;
  private readonly rotateMs: number;
  private readonly now: () => number;
  private handle: FileHandle | undefined;
  private bytes = 0;
  private startMs = 0;
  /** The audit chain's seq when the active file got its first line: its rotated name. */
  private firstSeq = 0;
  private unsynced = 0;

  constructor(opts: CaptureFilesOptions) {
    this.path = opts.path;
    this.rotateBytes = opts.rotateBytes;
    this.rotateMs = opts.rotateMs;
    this.now = opts.now;
  }

  /** Opens the active file on first use (none is made until something is captured). */
  private async ensureOpen(seq: number): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    const handle = await open(this.path, 'a+', 0o640);
    this.handle = handle;
    const size = await cutTornLine(handle, (await handle.stat()).size);
    if (size === 0 || this.startMs === 0) {
      // An existing file from before a restart keeps going; its age counts from now.
      this.startMs = this.now();
      this.firstSeq = seq;
    }
    this.bytes = size;
    return handle;
  }

  /** Writes buf[off…] at the end of the active file (rotating it first when due); returns the
   * bytes written. `seq`: the audit chain's next seq, which names a file when it rotates. */
  async write(buf: Buffer, off: number, seq: number): Promise<number> {
    if (this.handle !== undefined && this.bytes > 0 && this.due(buf.length - off)) await this.rotate(seq);
    const handle = await this.ensureOpen(seq);
    const { bytesWritten } = await handle.write(buf, off, buf.length - off);
    this.bytes += bytesWritten;
    this.unsynced += bytesWritten;
    return bytesWritten;
  }

  private due(adding: number): boolean {
    return this.bytes + adding > this.rotateBytes || this.now() - this.startMs >= this.rotateMs;
  }

  private async rotate(seq: number): Promise<void> {
    await this.sync();
    await this.handle?.close();
    this.handle = undefined;
    await rename(this.path, rotatedName(this.path, this.firstSeq, new Date(this.now())));
    this.bytes = 0;
    this.startMs = 0;
    this.firstSeq = seq;
  }

  async sync(): Promise<void> {
    if (this.unsynced === 0 || this.handle === undefined) return;
    await this.handle.datasync();
    this.unsynced = 0;
  }

  /** After a failed write: the next write reopens the file. */
  async reset(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
  }

  async close(): Promise<void> {
    await this.sync();
    await this.handle?.close();
    this.handle = undefined;
  }
}

/** A line the previous writer left without its newline (it crashed mid-write) is cut off, so the
 * next line does not run into it; returns the size after. Lines are whole or absent, never half:
 * a cut capture reads as erased, its record says what it held. */
async function cutTornLine(handle: FileHandle, size: number): Promise<number> {
  if (size === 0) return 0;
  const buf = Buffer.alloc(64 * 1024);
  let end = size;
  let first = true;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await handle.read(buf, 0, end - start, start);
    if (first && buf[bytesRead - 1] === 0x0a) return size;
    first = false;
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl !== -1) {
      await handle.truncate(start + nl + 1);
      return start + nl + 1;
    }
    end = start;
  }
  await handle.truncate(0);
  return 0;
}
