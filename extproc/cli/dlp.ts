// lm-gate dlp scan: the gate's DLP engine over JSON lines, for trying a policy on real text
// and for measuring it.
//   lm-gate dlp scan [--format jsonl|table] [--policy NAME] [-c CONFIG] [FILE]
// Reads {"id","text"} per line from FILE or stdin and writes, in order, one line per input line:
// {"id","findings":[{"type","start","end","action"}]} where start/end are Unicode code points
// of the raw text, end exclusive (emoji or CJK before an entity do not shift it); blank lines
// are skipped. Without -c the default policy of an empty config runs. Matched values are never
// printed.

import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { loadConfigFile } from '../config/load.ts';
import { type DlpConfig, dlpConfig } from '../dlp/config.ts';
import type { Finding } from '../dlp/types.ts';
import { CommandError, parseCommandArgs, UsageError } from './usage.ts';

export const DLP_SCAN = 'lm-gate dlp scan [--format jsonl|table] [--policy NAME] [-c FILE] [INPUT]';

export interface DlpIo {
  /** Where lines come from when no INPUT is given. */
  stdin: Readable;
  /** Writes text; resolves when the sink can take more. */
  write: (text: string) => Promise<void> | void;
}

const processIo: DlpIo = {
  stdin: process.stdin,
  write: async (text) => {
    if (!process.stdout.write(text)) await once(process.stdout, 'drain');
  },
};

export async function dlpCommand(args: string[], io: DlpIo = processIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'scan') return scanCommand(rest, io);
  if (sub === '--help' || sub === '-h') {
    await io.write(`usage: ${DLP_SCAN}\n`);
    return 0;
  }
  throw new UsageError('lm-gate dlp', 'expected "dlp scan"', DLP_SCAN);
}

/** Output is written in blocks of about this many characters. */
const OUTPUT_BLOCK = 1 << 16;

const PAIR = /[\ud800-\udbff][\udc00-\udfff]/g;

/** UTF-16 offsets (sorted or not) of `text` as code point offsets: each surrogate pair before an
 * offset counts once. */
export function codePointOffsets(text: string, offsets: readonly number[]): number[] {
  const order = offsets.map((o, i) => [o, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(offsets.length);
  let pairs = 0;
  // Pairs at or after the last offset change nothing: the search stops there, not at the end
  // of the text (in a two-byte text the search costs about a nanosecond a character).
  const last = order.length > 0 ? order[order.length - 1]![0] : 0;
  const upto = last + 1 < text.length ? text.slice(0, last + 1) : text;
  PAIR.lastIndex = 0;
  let next = PAIR.exec(upto);
  for (const [target, i] of order) {
    // Pairs wholly before the offset.
    while (next !== null && next.index + 2 <= target) {
      pairs++;
      next = PAIR.exec(upto);
    }
    // An offset inside a pair (never a finding's) counts that pair's code point as passed.
    const inside = next !== null && next.index < target ? 1 : 0;
    out[i] = target - pairs - inside;
  }
  return out;
}

interface Row {
  id: unknown;
  findings: { type: string; start: number; end: number; action: string; confidence: number }[];
}

function toRow(id: unknown, text: string, findings: Finding[]): Row {
  if (findings.length === 0) return { id, findings: [] };
  const offsets = codePointOffsets(
    text,
    findings.flatMap((f) => [f.start, f.end]),
  );
  return {
    id,
    findings: findings.map((f, i) => ({
      type: f.type,
      start: offsets[2 * i]!,
      end: offsets[2 * i + 1]!,
      action: f.action,
      confidence: f.confidence,
    })),
  };
}

async function scanCommand(args: string[], io: DlpIo): Promise<number> {
  const cmd = 'lm-gate dlp scan';
  const { values, positionals } = parseCommandArgs(cmd, DLP_SCAN, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      policy: { type: 'string' },
      format: { type: 'string', default: 'jsonl' },
    },
  });
  if (values.help) {
    await io.write(`usage: ${DLP_SCAN}\n`);
    return 0;
  }
  if (values.format !== 'jsonl' && values.format !== 'table')
    throw new UsageError(cmd, `--format must be jsonl or table, not "${values.format}"`, DLP_SCAN);
  if (positionals.length > 1) throw new UsageError(cmd, 'one INPUT file at most (none reads stdin)', DLP_SCAN);
  const dlp: DlpConfig = values.config ? (await loadConfigFile(values.config)).dlp : dlpConfig.parse(undefined);
  const name = values.policy ?? dlp.defaultPolicy;
  const policy = dlp.policies.find((p) => p.name === name);
  if (!policy)
    throw new CommandError(
      `${cmd}: no DLP policy is named "${name}"; policies: ${dlp.policies.map((p) => p.name).join(', ')}`,
    );
  // Loaded here, not at startup: the phone metadata is large and only this command needs it.
  const { compileDlp } = await import('../dlp/compile.ts');
  const scanner = compileDlp(policy);
  const file = positionals[0];
  const source = file ?? 'stdin';
  const input = file === undefined || file === '-' ? io.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
  const table = values.format === 'table';
  // Output is gathered and written in blocks, lines are cut from the input's chunks: no promise
  // or write per line (at ~50,000 short lines a second those cost as much as the scans).
  let out = table
    ? `${'id'.padEnd(16)} ${'type'.padEnd(18)} ${'start'.padStart(7)} ${'end'.padStart(7)} action        confidence\n`
    : '';
  const flush = async () => {
    if (out.length === 0) return;
    const text = out;
    out = '';
    await io.write(text);
  };
  let n = 0;
  const scanLine = (raw: string) => {
    n++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const { id, text } = parseLine(line, n, source);
    const row = toRow(id, text, scanner.scan(text));
    if (!table) {
      out += `${JSON.stringify({ id: row.id, findings: row.findings.map(({ type, start, end, action }) => ({ type, start, end, action })) })}\n`;
      return;
    }
    for (const f of row.findings)
      out += `${String(row.id).padEnd(16)} ${f.type.padEnd(18)} ${String(f.start).padStart(7)} ${String(f.end).padStart(7)} ${f.action.padEnd(13)} ${f.confidence.toFixed(2)}\n`;
  };
  // Lines are cut from the input's bytes and each is decoded on its own (a newline byte is never
  // inside a UTF-8 sequence, so a character split between chunks stays in one line's bytes): no
  // decoded copy of each whole chunk (two bytes a character once it holds one non-ASCII
  // character) to slice lines from.
  /** The unfinished last line, in pieces (a line may span many chunks). */
  const pending: Buffer[] = [];
  try {
    for await (const chunk of input) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      let start = 0;
      for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
        let line: string;
        if (pending.length === 0) line = bytes.toString('utf8', start, nl);
        else {
          pending.push(bytes.subarray(start, nl));
          line = Buffer.concat(pending).toString('utf8');
          pending.length = 0;
        }
        start = nl + 1;
        scanLine(line);
      }
      if (start < bytes.length) pending.push(bytes.subarray(start));
      if (out.length >= OUTPUT_BLOCK) await flush();
    }
    if (pending.length > 0) {
      const last = Buffer.concat(pending).toString('utf8');
      if (last.length > 0) scanLine(last);
    }
  } catch (err) {
    // What was decided before the bad line still goes out, as it did line by line.
    await flush();
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CommandError(`${cmd}: ${file}: no such file`);
    throw err;
  }
  await flush();
  return 0;
}

function parseLine(line: string, n: number, source: string): { id: unknown; text: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new CommandError(`lm-gate dlp scan: ${source} line ${n}: not JSON`);
  }
  const { id, text } = (value ?? {}) as { id?: unknown; text?: unknown };
  if (typeof text !== 'string') throw new CommandError(`lm-gate dlp scan: ${source} line ${n}: needs a "text" string`);
  return { id: id ?? null, text };
}
