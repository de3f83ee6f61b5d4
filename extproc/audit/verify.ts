// Proves a set of audit files: every line's seq and prev (chain.ts), every checkpoint's chaining
// and, with the public key, its signature (checkpoint.ts), across file boundaries in chain
// order. Stops at the first problem and names it: the file, the line number, the seq, and why.
//
// What it can and cannot see (docs/audit.md): a changed, deleted, inserted or reordered line
// anywhere, and a file missing between two others, break the chain; rewriting the chain after
// a checkpoint breaks its signature; lines after the last checkpoint are held by the hash chain
// only, and a truncated tail or a missing newest file is visible only against an external copy
// of the last checkpoint (or the gate's lmgate_audit_checkpoints_total).
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { GENESIS, sha256Hex } from './chain.ts';
import { checkSignature } from './checkpoint.ts';

export interface VerifyProblem {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  seq: number | null;
  reason: string;
}

export interface VerifyReport {
  problem: VerifyProblem | undefined;
  files: number;
  lines: number;
  records: number;
  checkpoints: number;
  /** Checkpoints whose signature was checked and holds. */
  signed: number;
  breaks: { file: string; line: number; seq: number }[];
  /** Lines after the last checkpoint: held by the hash chain only. */
  afterLastCheckpoint: number;
  /** Things that are not failures but a reader should know. */
  notes: string[];
}

export interface VerifyOptions {
  /** Ed25519 public key: checkpoints must be signed by it. Without: signatures are not checked. */
  publicKey?: KeyObject;
  /** The set may start mid-chain (older files deleted by retention). */
  partial?: boolean;
  /** Bytes read so far, now and then. */
  onProgress?: (bytes: number) => void;
}

class Bad extends Error {
  readonly line: number;
  readonly seq: number | null;
  /** Set when the bad line is in another file than the one being read (the line before). */
  readonly file: string | undefined;
  constructor(line: number, seq: number | null, reason: string, file?: string) {
    super(reason);
    this.line = line;
    this.seq = seq;
    this.file = file;
  }
}

/** Files sorted into chain order by the seq of their first line. */
async function chainOrder(files: string[]): Promise<{ file: string; firstSeq: number }[]> {
  const out: { file: string; firstSeq: number }[] = [];
  for (const file of files) {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      const first = buf.subarray(0, nl === -1 ? bytesRead : nl).toString('utf8');
      let seq: unknown;
      try {
        seq = (JSON.parse(first) as { seq?: unknown }).seq;
      } catch {
        seq = undefined;
      }
      // A file whose first line says nothing sorts first and fails there, by name.
      out.push({ file, firstSeq: typeof seq === 'number' ? seq : -1 });
    } finally {
      await handle.close();
    }
  }
  return out.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Each line of a file (without its newline), and whether the last one was complete. */
async function* lines(file: string, onBytes: (n: number) => void): AsyncGenerator<Buffer, boolean> {
  let carry: Buffer | undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    onBytes(chunk.length);
    let data = carry ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a, start)) {
      yield data.subarray(start, nl);
      start = nl + 1;
    }
    data = data.subarray(start);
    carry = data.length > 0 ? Buffer.from(data) : undefined;
  }
  if (carry) {
    yield carry;
    return false;
  }
  return true;
}

export async function verifyFiles(files: string[], opts: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = {
    problem: undefined,
    files: files.length,
    lines: 0,
    records: 0,
    checkpoints: 0,
    signed: 0,
    breaks: [],
    afterLastCheckpoint: 0,
    notes: [],
  };
  let bytes = 0;
  let lastProgress = 0;
  const onBytes = (n: number) => {
    bytes += n;
    const now = Date.now();
    if (opts.onProgress && now - lastProgress >= 100) {
      lastProgress = now;
      opts.onProgress(bytes);
    }
  };
  const ordered = await chainOrder(files);
  let expectSeq: number | undefined;
  let prevHash: string | undefined;
  let prevAt = '';
  let prevLine = { file: '', line: 0, seq: 0 };
  /** Hash of the last checkpoint line; undefined until one is seen in a partial set. */
  let lastCheckpoint: string | null | undefined = opts.partial ? undefined : null;
  let recordsSince: number | undefined = opts.partial ? undefined : 0;
  let unsigned = 0;

  for (let f = 0; f < ordered.length; f++) {
    const { file } = ordered[f]!;
    const isLast = f === ordered.length - 1;
    let lineNo = 0;
    const it = lines(file, onBytes);
    try {
      let next = await it.next();
      while (!next.done) {
        const raw = next.value;
        next = await it.next();
        lineNo++;
        if (next.done && next.value === false) {
          // The last line has no newline: torn by a crash, or being written right now.
          if (!isLast) throw new Bad(lineNo, null, 'incomplete line (no newline) inside the chain');
          report.notes.push(`${file}:${lineNo}: incomplete last line ignored (the writer crashed or is writing)`);
          break;
        }
        report.lines++;
        await judge(raw);
      }
    } catch (err) {
      if (!(err instanceof Bad)) throw err;
      report.problem = { file: err.file ?? file, line: err.line, seq: err.seq, reason: err.message };
      return report;
    }

    // One complete line.
    async function judge(raw: Buffer): Promise<void> {
      const at = `${file}:${lineNo}`;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new Bad(lineNo, null, 'not a JSON line');
      }
      const seq = typeof o.seq === 'number' ? o.seq : null;
      if (seq === null || typeof o.prev !== 'string' || typeof o.type !== 'string')
        throw new Bad(lineNo, seq, 'not an audit chain line (type, seq and prev are required)');
      if (expectSeq === undefined) {
        if (!opts.partial && (seq !== 0 || o.prev !== GENESIS))
          throw new Bad(
            lineNo,
            seq,
            `the set starts at seq ${seq}, not at the start of the chain: earlier files are missing (pass --partial if retention removed them)`,
          );
        if (seq !== 0) report.notes.push(`the set starts mid-chain at seq ${seq} (${at})`);
      } else if (seq !== expectSeq) {
        const boundary = lineNo === 1 ? ` (file boundary after ${prevAt})` : '';
        throw new Bad(
          lineNo,
          seq,
          seq > expectSeq
            ? `seq jumps from ${expectSeq - 1} to ${seq}${boundary}: ${seq - expectSeq} line(s) missing — ${lineNo === 1 ? 'a file was removed' : 'deleted'}`
            : `seq ${seq} where ${expectSeq} was due${boundary}: a line was inserted or moved`,
        );
      } else if (o.prev !== prevHash) {
        // The line before is the one named: its bytes no longer hash to what this line holds.
        throw new Bad(
          prevLine.line,
          prevLine.seq,
          `its hash does not match the prev of the next line (${at}): this line was changed (or that line's prev was)`,
          prevLine.file,
        );
      }
      const hash = sha256Hex(raw);
      switch (o.type) {
        case 'request':
          report.records++;
          if (recordsSince !== undefined) recordsSince++;
          break;
        case 'break':
          report.breaks.push({ file, line: lineNo, seq });
          break;
        case 'checkpoint': {
          if (lastCheckpoint !== undefined && o.prev_checkpoint !== lastCheckpoint)
            throw new Bad(lineNo, seq, 'prev_checkpoint does not match the hash of the previous checkpoint line');
          if (recordsSince !== undefined && o.records !== recordsSince)
            throw new Bad(
              lineNo,
              seq,
              `checkpoint counts ${String(o.records)} records, the chain holds ${recordsSince}`,
            );
          if (opts.publicKey) {
            const why = await checkSignature(raw.toString('utf8'), o.jws, opts.publicKey);
            if (why) throw new Bad(lineNo, seq, why);
            report.signed++;
          } else if (typeof o.jws !== 'string') unsigned++;
          report.checkpoints++;
          lastCheckpoint = hash;
          recordsSince = 0;
          report.afterLastCheckpoint = -1;
          break;
        }
        default:
          throw new Bad(lineNo, seq, `unknown line type ${JSON.stringify(o.type)}`);
      }
      report.afterLastCheckpoint++;
      expectSeq = seq + 1;
      prevHash = hash;
      prevAt = at;
      prevLine = { file, line: lineNo, seq };
    }
  }
  if (report.lines === 0) {
    // Nothing to prove is not a proof: an emptied file must not pass.
    const file = ordered[0]?.file ?? '';
    report.problem = { file, line: 0, seq: null, reason: 'no complete audit line in the set' };
    return report;
  }
  if (!opts.publicKey) report.notes.push('checkpoint signatures not checked: pass --key PUBLIC.pem');
  if (unsigned > 0) report.notes.push(`${unsigned} checkpoint(s) carry no signature (audit.signingKey unset)`);
  if (report.afterLastCheckpoint > 0)
    report.notes.push(
      `${report.afterLastCheckpoint} line(s) after the last checkpoint are held by the hash chain only`,
    );
  return report;
}

export async function totalBytes(files: string[]): Promise<number> {
  let n = 0;
  for (const f of files) n += (await stat(f)).size;
  return n;
}
