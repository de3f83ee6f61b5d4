// Proves a set of audit files: every line's seq and prev (chain.ts), every checkpoint's chaining
// and, with the public key, its signature (checkpoint.ts), across file boundaries in chain
// order. Stops at the first problem and names it: the file, the line number, the seq, and why.
//
// What it can and cannot see (docs/audit.md): a changed, deleted, inserted or reordered line
// anywhere, and a file missing between two others, break the chain; rewriting the chain after
// a checkpoint breaks its signature; lines after the last checkpoint are held by the hash chain
// only, and a truncated tail or a missing newest file is visible only against an external copy
// of the last checkpoint (or the gate's lmgate_audit_checkpoints_total).
//
// Capture files (audit.capture) may be given with the audit files (they are told apart by their
// first line). Each record that links a capture is checked against it: a capture line whose
// SHA-256 is not the one its record holds was changed; a record whose capture line is not in the
// set is counted as erased (retention or an erasure request deleted it; the chain does not
// depend on it); a capture line no record in the set links is a problem (inserted, or its
// request_id changed) unless the set is partial.
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
  /** refusal_summary lines, and the refusals they count (not in `records`). */
  summaries: number;
  summarised: number;
  /** Lines after the last checkpoint: held by the hash chain only. */
  afterLastCheckpoint: number;
  /** Things that are not failures but a reader should know. */
  notes: string[];
  /** Capture files given and what was found against the records. */
  captures: { files: number; lines: number; matched: number; erased: number; unlinked: number };
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

/** Files sorted into chain order by the seq of their first line, and the capture files apart. */
async function chainOrder(files: string[]): Promise<{ file: string; firstSeq: number; capture: boolean }[]> {
  const out: { file: string; firstSeq: number; capture: boolean }[] = [];
  for (const file of files) {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      const first = buf.subarray(0, nl === -1 ? bytesRead : nl).toString('utf8');
      let seq: unknown;
      let type: unknown;
      try {
        ({ seq, type } = JSON.parse(first) as { seq?: unknown; type?: unknown });
      } catch {
        seq = undefined;
      }
      // A file whose first line says nothing sorts first and fails there, by name.
      out.push({ file, firstSeq: typeof seq === 'number' ? seq : -1, capture: type === 'capture' });
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
    summaries: 0,
    summarised: 0,
    afterLastCheckpoint: 0,
    notes: [],
    captures: { files: 0, lines: 0, matched: 0, erased: 0, unlinked: 0 },
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
  const all = await chainOrder(files);
  const ordered = all.filter((f) => !f.capture);
  report.files = ordered.length;
  const captureFiles = all.filter((f) => f.capture).map((f) => f.file);
  report.captures.files = captureFiles.length;
  let captures: Map<string, CaptureEntry[]>;
  try {
    captures = await readCaptures(captureFiles, onBytes, report);
  } catch (err) {
    if (!(err instanceof Bad)) throw err;
    report.problem = { file: err.file ?? '', line: err.line, seq: null, reason: err.message };
    return report;
  }
  let expectSeq: number | undefined;
  let prevHash: string | undefined;
  let prevAt = '';
  let prevLine = { file: '', line: 0, seq: 0 };
  /** Hash of the last checkpoint line; undefined until one is seen in a partial set. */
  let lastCheckpoint: string | null | undefined = opts.partial ? undefined : null;
  let recordsSince: number | undefined = opts.partial ? undefined : 0;
  let unsigned = 0;

  /** The latest request time among the records (RFC 3339 UTC strings sort as times). */
  let lastRecordTime = '';
  /** The record's capture line, when it links one: present and unchanged, or erased. */
  const checkCapture = (o: Record<string, unknown>, seq: number): void => {
    const link = o.capture as { sha256?: unknown } | null | undefined;
    if (link === null || link === undefined || typeof link.sha256 !== 'string') return;
    const id = typeof o.request_id === 'string' ? o.request_id : '';
    const entries = captures.get(id);
    if (entries === undefined || entries.length === 0) {
      report.captures.erased++;
      return;
    }
    const i = entries.findIndex((e) => e.sha256 === link.sha256);
    if (i === -1) {
      const e = entries[0]!;
      throw new Bad(
        e.line,
        null,
        `capture line of request ${JSON.stringify(id)} does not match the sha256 its record (seq ${seq}) holds: it was changed`,
        e.file,
      );
    }
    entries.splice(i, 1);
    if (entries.length === 0) captures.delete(id);
    report.captures.matched++;
  };

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
          if (typeof o.time === 'string' && o.time > lastRecordTime) lastRecordTime = o.time;
          if (recordsSince !== undefined) recordsSince++;
          checkCapture(o, seq);
          break;
        case 'break':
          report.breaks.push({ file, line: lineNo, seq });
          break;
        case 'refusal_summary':
          // Refusals the sink counted instead of recording one by one (sink.ts): chained like any
          // line, not a request line, so checkpoints' `records` leave it out.
          report.summaries++;
          if (typeof o.refused === 'number') report.summarised += o.refused;
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
  // Capture lines no record links. Those of requests after the last record are what a crash can
  // leave (the capture page reached the disk, the record's did not: durability none or
  // interval); one among the records was inserted or had its request_id changed.
  let late = 0;
  let within: CaptureEntry | undefined;
  for (const entries of captures.values())
    for (const e of entries) {
      report.captures.unlinked++;
      if (e.time > lastRecordTime) late++;
      else if (within === undefined || e.file < within.file || (e.file === within.file && e.line < within.line))
        within = e;
    }
  if (within !== undefined) {
    const why = `${report.captures.unlinked - late} capture line(s) among the records that no record links (the first shown): inserted, or a request_id changed`;
    if (!opts.partial) {
      report.problem = { file: within.file, line: within.line, seq: null, reason: why };
      return report;
    }
    report.notes.push(`${why}, or their records are in files not given (--partial)`);
  }
  if (late > 0)
    report.notes.push(
      `${late} capture line(s) of requests after the last record: their records were lost (a crash before they reached the disk) or are in files not given`,
    );
  if (report.captures.erased > 0)
    report.notes.push(
      `${report.captures.erased} record(s) link a capture line not in the set: erased (deleted for retention or erasure) or its capture file not given`,
    );
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

interface CaptureEntry {
  sha256: string;
  file: string;
  line: number;
  /** The request's time, as the line says. */
  time: string;
}

/** Every capture line of the capture files, by request id, with its hash. */
async function readCaptures(
  files: string[],
  onBytes: (n: number) => void,
  report: VerifyReport,
): Promise<Map<string, CaptureEntry[]>> {
  const out = new Map<string, CaptureEntry[]>();
  for (const file of files) {
    let lineNo = 0;
    const it = lines(file, onBytes);
    let next = await it.next();
    while (!next.done) {
      const raw = next.value;
      next = await it.next();
      lineNo++;
      if (next.done && next.value === false) {
        report.notes.push(`${file}:${lineNo}: incomplete last capture line ignored (the writer crashed or is writing)`);
        break;
      }
      let o: { type?: unknown; request_id?: unknown; time?: unknown };
      try {
        o = JSON.parse(raw.toString('utf8')) as typeof o;
      } catch {
        throw new Bad(lineNo, null, 'not a JSON line (in a capture file)', file);
      }
      if (o.type !== 'capture' || typeof o.request_id !== 'string')
        throw new Bad(lineNo, null, 'not a capture line (type "capture" and request_id are required)', file);
      report.captures.lines++;
      const entry = { sha256: sha256Hex(raw), file, line: lineNo, time: typeof o.time === 'string' ? o.time : '' };
      const list = out.get(o.request_id);
      if (list === undefined) out.set(o.request_id, [entry]);
      else list.push(entry);
    }
  }
  return out;
}
