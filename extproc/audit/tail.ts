// Where the chain stands in an existing audit file, read from its end at start: the last
// complete line (its seq and hash), the last checkpoint line's hash, and whether the writer
// stopped cleanly (its last line is a shutdown checkpoint). A torn last line (the process died
// mid-write) is cut off: it was never a complete record, and in strict mode never answered.
import { open } from 'node:fs/promises';
import { sha256Hex } from './chain.ts';

const CHUNK = 1 << 20;
const CHECKPOINT_HEAD = Buffer.from('{"type":"checkpoint"');
const REQUEST_HEAD = Buffer.from('{"type":"request"');

export interface Tail {
  /** seq of the next line. */
  seq: number;
  /** Hash of the last complete line. */
  prev: string;
  /** Hash of the last checkpoint line, or null when the file holds none. */
  lastCheckpoint: string | null;
  /** Lines, and request records among them, after the last checkpoint. */
  linesSinceCheckpoint: number;
  recordsSinceCheckpoint: number;
  /** The last line is a shutdown checkpoint. */
  clean: boolean;
  /** Bytes of a torn last line that were cut off. */
  tornBytes: number;
  /** `time` of the file's first line, for rotation by age. */
  firstTime: string | undefined;
  /** seq of the file's first line. */
  firstSeq: number;
}

/** undefined when the file is missing or empty. Throws when its last line is not a chain
 * line: the chain cannot resume from it, and starting a new one silently would hide that. */
export async function readTail(path: string, opts: { truncateTorn: boolean }): Promise<Tail | undefined> {
  const handle = await open(path, opts.truncateTorn ? 'r+' : 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!handle) return undefined;
  try {
    let size = (await handle.stat()).size;
    if (size === 0) return undefined;
    // Lines from the end, newest first, until the last checkpoint (every file starts with one).
    let end = size;
    let carry = Buffer.alloc(0);
    let last: Buffer | undefined;
    let lastCheckpoint: Buffer | undefined;
    let tornBytes = 0;
    let first: Buffer | undefined;
    let linesAfter = 0;
    let recordsAfter = 0;
    while (end > 0 && lastCheckpoint === undefined) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.alloc(end - start);
      await handle.read(buf, 0, buf.length, start);
      let data = Buffer.concat([buf, carry]);
      if (end === size && data[data.length - 1] !== 0x0a) {
        const nl = data.lastIndexOf(0x0a);
        if (nl === -1 && start > 0) throw new Error(`${path}: its last ${CHUNK} bytes hold no line end`);
        tornBytes = data.length - (nl + 1);
        data = data.subarray(0, nl + 1);
      }
      end = start;
      // data: [partial line of an earlier chunk]? complete lines, each ending in \n.
      let stop = data.length - 1;
      for (let nl = data.lastIndexOf(0x0a, stop - 1); ; nl = data.lastIndexOf(0x0a, stop - 1)) {
        if (nl === -1 && start > 0) {
          carry = data.subarray(0, stop + 1);
          break;
        }
        const line = data.subarray(nl + 1, stop);
        if (line.length > 0) {
          last ??= line;
          if (line.subarray(0, CHECKPOINT_HEAD.length).equals(CHECKPOINT_HEAD)) {
            lastCheckpoint = line;
            break;
          }
          linesAfter++;
          if (line.subarray(0, REQUEST_HEAD.length).equals(REQUEST_HEAD)) recordsAfter++;
          if (nl === -1) first = line;
        }
        if (nl === -1) {
          carry = Buffer.alloc(0);
          break;
        }
        stop = nl;
      }
    }
    if (tornBytes > 0 && opts.truncateTorn) {
      size -= tornBytes;
      await handle.truncate(size);
    }
    if (last === undefined) {
      if (tornBytes > 0) throw new Error(`${path}: holds only a torn line; move it aside to start a new chain`);
      return undefined;
    }
    const parsed = parseChainLine(path, last);
    first ??= await firstLine(handle);
    const firstParsed = first ? parseChainLine(path, first) : parsed;
    return {
      seq: parsed.seq + 1,
      prev: sha256Hex(last),
      lastCheckpoint: lastCheckpoint ? sha256Hex(lastCheckpoint) : null,
      linesSinceCheckpoint: linesAfter,
      recordsSinceCheckpoint: recordsAfter,
      clean: parsed.type === 'checkpoint' && parsed.reason === 'shutdown',
      tornBytes,
      firstTime: typeof firstParsed.time === 'string' ? firstParsed.time : undefined,
      firstSeq: firstParsed.seq,
    };
  } finally {
    await handle.close();
  }
}

async function firstLine(handle: import('node:fs/promises').FileHandle): Promise<Buffer | undefined> {
  const buf = Buffer.alloc(CHUNK);
  const { bytesRead } = await handle.read(buf, 0, CHUNK, 0);
  const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
  return nl === -1 ? undefined : buf.subarray(0, nl);
}

function parseChainLine(path: string, line: Buffer): { seq: number; type: string; reason?: string; time?: string } {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    v = undefined;
  }
  const o = v as { seq?: unknown; type?: unknown } | undefined;
  if (!o || typeof o.seq !== 'number' || typeof o.type !== 'string')
    throw new Error(
      `${path}: its last line is not an audit chain line (no seq/type); move the file aside to start a new chain`,
    );
  return o as { seq: number; type: string };
}
