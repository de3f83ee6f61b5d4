import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { sinkRefusalRecord } from '../../test/harness/audit-records.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { GENESIS, sha256Hex } from './chain.ts';
import { checkpointPayload } from './checkpoint.ts';
import { rotatedFiles } from './files.ts';
import type { AuditRecord } from './record.ts';
import { auditLine } from './record-schema.ts';
import { sinkRefusal } from './refusal-tally.ts';
import { FileAuditSink, type FileAuditSinkOptions } from './sink.ts';
import { verifyFiles } from './verify.ts';

const logger = pino({ level: 'silent' });
const rec = (id: string) => ({ schema_version: 2, request_id: id }) as unknown as AuditRecord;

async function sinkIn(over: Partial<FileAuditSinkOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'sink-'));
  const path = join(dir, 'a.log');
  const metrics = new Metrics({ defaultMetrics: false });
  const opts = { path, maxPendingBytes: 1 << 20, logger, metrics, ...over };
  return { dir, path, metrics, opts, sink: new FileAuditSink(opts) };
}

const lines = async (path: string) =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
const requests = async (path: string) => (await lines(path)).filter((l) => l.type === 'request');

/** The chain holds over these raw lines: seq counts up from `seq`, prev hashes the line before. */
function expectChained(raw: string[], from = { seq: 0, prev: GENESIS }) {
  let { seq, prev } = from;
  for (const line of raw) {
    const o = JSON.parse(line);
    expect({ seq: o.seq, prev: o.prev }).toEqual({ seq, prev });
    prev = sha256Hex(line);
    seq++;
  }
  return { seq, prev };
}
const rawLines = async (path: string) => (await readFile(path, 'utf8')).split('\n').filter(Boolean);

describe('FileAuditSink', () => {
  it('writes one JSON line per record, in order, across concurrent writes', async () => {
    const { path, sink } = await sinkIn();
    for (let i = 0; i < 500; i++) {
      sink.write(rec(String(i)));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await sink.close();
    expect((await requests(path)).map((l) => l.request_id)).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  });

  it('links every line into one hash chain that opens and closes with a checkpoint', async () => {
    const { path, sink } = await sinkIn({ checkpointRecords: 3 });
    for (let i = 0; i < 7; i++) sink.write(rec(`r${i}`));
    await sink.close();
    const raw = await rawLines(path);
    expectChained(raw);
    const all = raw.map((l) => JSON.parse(l));
    expect(all.map((l) => (l.type === 'checkpoint' ? l.reason : l.request_id))).toEqual([
      'open',
      'r0',
      'r1',
      'r2',
      'r3',
      'r4',
      'r5',
      'r6',
      'count',
      'shutdown',
    ]);
    // A record keeps its own fields after the chain's; checkpoints chain each other.
    expect(all[1]).toEqual({ type: 'request', seq: 1, prev: sha256Hex(raw[0]!), schema_version: 2, request_id: 'r0' });
    expect(all[8].prev_checkpoint).toBe(sha256Hex(raw[0]!));
    expect(all[9].prev_checkpoint).toBe(sha256Hex(raw[8]!));
    expect(all[8].records).toBe(7);
  });

  it('signs checkpoints as EdDSA JWS over the line without its jws field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sink-key-'));
    const { privateKey } = generateKeyPairSync('ed25519');
    const keyPath = join(dir, 'key.pem');
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const { path, sink } = await sinkIn({ signingKey: keyPath });
    sink.write(rec('a'));
    await sink.close();
    const raw = await rawLines(path);
    const cp = raw.at(-1)!;
    const o = JSON.parse(cp);
    expect(o.reason).toBe('shutdown');
    const [header, payload] = (o.jws as string).split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'EdDSA', kid: o.kid });
    expect(Buffer.from(payload!, 'base64url').toString()).toBe(checkpointPayload(cp));
  });

  it('resumes the chain after a clean restart, and records a break (cutting a torn line) after a crash', async () => {
    const { path, opts, sink } = await sinkIn();
    sink.write(rec('a'));
    await sink.close();
    const second = new FileAuditSink(opts);
    second.write(rec('b'));
    await second.flush();
    // Crash: no shutdown checkpoint, and half a line at the end.
    const before = await readFile(path, 'utf8');
    await writeFile(path, `${before}{"type":"request","seq":9`);
    const third = new FileAuditSink(opts);
    third.write(rec('c'));
    await third.close();
    // (second is never closed: it stands for the process that died.)
    const raw = await rawLines(path);
    expectChained(raw);
    expect(
      raw.map((l) => JSON.parse(l)).map((l) => (l.type === 'request' ? l.request_id : `${l.type}:${l.reason ?? ''}`)),
    ).toEqual([
      'checkpoint:open',
      'a',
      'checkpoint:shutdown',
      'checkpoint:start',
      'b',
      'break:the previous writer stopped without a shutdown checkpoint',
      'checkpoint:start',
      'c',
      'checkpoint:shutdown',
    ]);
    // The checkpoint after the break counts the record the crashed writer left after its last.
    expect(JSON.parse(raw[6]!).records).toBe(1);
    const report = await verifyFiles([path]);
    expect(report.problem).toBeUndefined();
    expect(report.breaks).toHaveLength(1);
    expect(JSON.parse(raw[5]!).torn_bytes).toBe('{"type":"request","seq":9'.length);
  });

  it('rotates by size: each file ends with a rotate checkpoint and the next opens naming its last hash', async () => {
    const { path, sink } = await sinkIn({ rotateBytes: 4096 });
    await sink.open();
    for (let i = 0; i < 200; i++) {
      sink.write(rec(`r${i}`.padEnd(40, '.')));
      if (i % 10 === 0) await sink.flush();
    }
    await sink.close();
    const files = [...(await rotatedFiles(path)), path];
    expect(files.length).toBeGreaterThan(2);
    let at = { seq: 0, prev: GENESIS };
    const ids: string[] = [];
    for (const f of files) {
      const raw = await rawLines(f);
      at = expectChained(raw, at);
      const first = JSON.parse(raw[0]!);
      expect(first.type === 'checkpoint' && ['open'].includes(first.reason)).toBe(true);
      if (f !== path) expect(JSON.parse(raw.at(-1)!).reason).toBe('rotate');
      for (const l of raw) if (JSON.parse(l).type === 'request') ids.push(JSON.parse(l).request_id.replace(/\.+$/, ''));
    }
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => `r${i}`));
  });

  it('writes checkpoints over empty periods and rotates by age', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const { path, sink } = await sinkIn({ checkpointMs: 1000, rotateMs: 5000, now: () => now });
    await sink.open();
    for (let i = 0; i < 6; i++) {
      now += 1000;
      await new Promise((r) => setTimeout(r, 150));
    }
    await sink.close();
    const rotated = await rotatedFiles(path);
    expect(rotated).toHaveLength(1);
    expect(rotated[0]).toMatch(/a\.log\.000000000000-20260101T000005Z$/);
    const reasons = (await lines(rotated[0]!)).map((l) => l.reason);
    expect(reasons[0]).toBe('open');
    expect(reasons.filter((r) => r === 'interval').length).toBeGreaterThanOrEqual(3);
    expect(reasons.at(-1)).toBe('rotate');
  });

  it('strict durability: onDurable runs once the record is fsynced, several records per fsync', async () => {
    const { sink, metrics } = await sinkIn({ durability: 'strict' });
    await sink.open();
    const done: string[] = [];
    for (let i = 0; i < 50; i++) sink.write(rec(`r${i}`), () => done.push(`r${i}`));
    expect(done).toEqual([]);
    await sink.flush();
    expect(done).toHaveLength(50);
    const fsyncs = (await metrics.registry.getSingleMetricAsString('lmgate_audit_fsync_seconds')).match(
      /lmgate_audit_fsync_seconds_count (\d+)/,
    );
    expect(Number(fsyncs![1])).toBeLessThan(10);
    await sink.close();
  });

  it('interval durability: written records are fsynced within fsyncIntervalMs, idle files are not', async () => {
    const { sink, metrics } = await sinkIn({ durability: 'interval', fsyncIntervalMs: 200 });
    await sink.open();
    const count = async () =>
      Number(
        /lmgate_audit_fsync_seconds_count (\d+)/.exec(
          await metrics.registry.getSingleMetricAsString('lmgate_audit_fsync_seconds'),
        )![1],
      );
    const opened = await count();
    sink.write(rec('a'));
    await sink.flush();
    expect(await count()).toBe(opened);
    await new Promise((r) => setTimeout(r, 450));
    expect(await count()).toBe(opened + 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await count()).toBe(opened + 1);
    await sink.close();
  });

  it('stops accepting past maxPendingBytes but keeps every record', async () => {
    const { path, sink } = await sinkIn({ maxPendingBytes: 100 });
    for (let i = 0; i < 10; i++) sink.write(rec(`r${i}`));
    expect(sink.accepting).toBe(false);
    await sink.flush();
    expect(sink.accepting).toBe(true);
    await sink.close();
    expect(await requests(path)).toHaveLength(10);
  });

  it('a failing sink stops accepting, retries, and loses nothing once the file is writable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sink-'));
    // The parent folder does not exist yet, so writes fail (file modes would not stop root).
    const path = join(dir, 'sub', 'a.log');
    const metrics = new Metrics({ defaultMetrics: false });
    const sink = new FileAuditSink({ path, maxPendingBytes: 1 << 20, logger, metrics });
    sink.write(rec('x'));
    await new Promise((r) => setTimeout(r, 30));
    expect(sink.accepting).toBe(false);
    sink.write(rec('y'));
    await mkdir(join(dir, 'sub'));
    await sink.flush();
    expect(sink.accepting).toBe(true);
    await sink.close();
    expect((await requests(path)).map((l) => l.request_id)).toEqual(['x', 'y']);
    expect(await metrics.registry.getSingleMetricAsString('lmgate_audit_write_errors_total')).toMatch(/ [1-9]/);
  });
});

describe('audit sink write path', () => {
  it('appends small batches synchronously, and once the file is slow goes through the thread pool for a while, losing nothing', async () => {
    // Every synchronous write counts as slow (slowWriteMs -1): the second, within a second of
    // the first (the open checkpoint), moves the sink to asynchronous writes (slow-writes.ts);
    // the records written after it are appended all the same, in order.
    const { path, metrics, sink } = await sinkIn({ slowWriteMs: -1 });
    for (let i = 0; i < 5; i++) {
      sink.write(rec(`r${i}`));
      await sink.flush();
    }
    await sink.close();
    expect((await requests(path)).map((r) => r.request_id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expectChained(await rawLines(path));
    expect((await metrics.auditSlowWrites.get()).values[0]?.value).toBe(2);
  });

  it('counts no slow write when the disk takes them quickly', async () => {
    const { path, metrics, sink } = await sinkIn({ slowWriteMs: 10_000 });
    for (let i = 0; i < 5; i++) {
      sink.write(rec(`r${i}`));
      await sink.flush();
    }
    await sink.close();
    expect(await requests(path)).toHaveLength(5);
    expect((await metrics.auditSlowWrites.get()).values[0]?.value ?? 0).toBe(0);
  });
});

const refusal = sinkRefusalRecord;
const REFUSAL_BYTES = JSON.stringify(refusal('q0000', Date.parse('2026-11-24T00:00:00Z'))).length + 1;

/** A sink whose folder does not exist yet: every write fails until the test makes it. */
async function failingSink(over: Partial<FileAuditSinkOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'sink-'));
  const path = join(dir, 'sub', 'a.log');
  const metrics = new Metrics({ defaultMetrics: false });
  const sink = new FileAuditSink({ path, maxPendingBytes: 1 << 20, logger, metrics, ...over });
  return { dir, path, metrics, sink, recover: () => mkdir(join(dir, 'sub')) };
}
const gauge = async (m: { get(): Promise<{ values: { value: number }[] }> }) => (await m.get()).values[0]?.value ?? 0;

describe('audit sink refusals while it cannot write', () => {
  it('keeps refusals one by one up to maxRefusalBytes, then counts them, and writes one chained summary after them on recovery', async () => {
    const kept = 3;
    const { path, metrics, sink, recover } = await failingSink({ maxRefusalBytes: kept * REFUSAL_BYTES });
    sink.write(rec('x'));
    await new Promise((r) => setTimeout(r, 30));
    expect(sink.accepting).toBe(false);

    const t0 = Date.parse('2026-11-24T00:00:00Z');
    let peak = 0;
    for (let i = 0; i < 2000; i++) {
      sink.write(refusal(`q${String(i).padStart(4, '0')}`, t0 + i));
      // An admitted request's record in the middle of the outage is never counted instead.
      if (i === 1000) sink.write(rec('y'));
      if (i % 100 === 0) {
        peak = Math.max(peak, await gauge(metrics.auditPendingBytes));
        await new Promise((r) => setImmediate(r));
      }
    }
    // Memory: the held bytes stay at x, y and the kept refusals, whatever the count refused.
    peak = Math.max(peak, await gauge(metrics.auditPendingBytes));
    // (A record is held as JSON.stringify gave it; the chain adds its newline when writing.)
    const held = JSON.stringify(rec('x')).length + JSON.stringify(rec('y')).length;
    expect(peak).toBe(held + kept * REFUSAL_BYTES);
    expect(await gauge(metrics.auditRefusalsSummarised)).toBe(2000 - kept);

    await recover();
    await sink.flush();
    expect(sink.accepting).toBe(true);
    // After recovery the bound starts over: a late refusal is recorded one by one again.
    sink.write(refusal('late', t0 + 5000));
    await sink.close();

    const all = await lines(path);
    const shown = all.map((l) => (l.type === 'request' ? l.request_id : l.type === 'checkpoint' ? l.reason : l.type));
    expect(shown).toEqual(['open', 'x', 'q0000', 'q0001', 'q0002', 'y', 'refusal_summary', 'late', 'shutdown']);
    const summary = all.find((l) => l.type === 'refusal_summary')!;
    expect(summary).toMatchObject({
      refused: 2000 - kept,
      first_time: new Date(t0 + kept).toISOString(),
      last_time: new Date(t0 + 1999).toISOString(),
      groups: [
        {
          tenant: null,
          route: null,
          api: 'openai.chat',
          status: 503,
          code: 'audit_unavailable',
          count: 2000 - kept,
          first_request_id: 'q0003',
          last_request_id: 'q1999',
        },
      ],
      other: null,
    });
    expect(summary.reason).toMatch(/audit sink unavailable/);
    expect(auditLine.safeParse(summary).success).toBe(true);
    // The shutdown checkpoint counts request lines only; verify proves the chain through it.
    expect(all.at(-1)!.records).toBe(6);
    const report = await verifyFiles([path]);
    expect(report.problem).toBeUndefined();
    expect({ records: report.records, summaries: report.summaries, summarised: report.summarised }).toEqual({
      records: 6,
      summaries: 1,
      summarised: 2000 - kept,
    });
    // The count is held by the chain: lowering it is caught, and the summary's line is named.
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace(`"refused":${2000 - kept},`, `"refused":${1000 - kept},`));
    const tampered = await verifyFiles([path]);
    expect(tampered.problem).toMatchObject({ line: shown.indexOf('refusal_summary') + 1 });
  });

  it('strict durability: a counted refusal is answered at once, a kept one waits for its fsync', async () => {
    const { sink, recover } = await failingSink({ durability: 'strict', maxRefusalBytes: REFUSAL_BYTES });
    const done: string[] = [];
    sink.write(refusal('kept', 0), () => done.push('kept'));
    sink.write(refusal('counted', 1), () => done.push('counted'));
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toEqual(['counted']);
    await recover();
    await sink.flush();
    expect(done).toEqual(['counted', 'kept']);
    await sink.close();
  });

  it('refusals from gate workers (writeLines) are bounded by the same writer', async () => {
    const { path, sink, recover } = await failingSink({ maxRefusalBytes: 2 * REFUSAL_BYTES });
    const batch = (from: number) =>
      Array.from({ length: 5 }, (_, i) => {
        const r = refusal(`w${from + i}`, from + i);
        return sinkRefusal(r, `${JSON.stringify(r)}\n`);
      });
    sink.writeLines(`${JSON.stringify(rec('a'))}\n`, 1, undefined, undefined, batch(0));
    sink.writeLines('', 0, undefined, undefined, batch(5));
    await recover();
    await sink.close();
    const all = await lines(path);
    expect(all.filter((l) => l.type === 'request').map((l) => l.request_id)).toEqual(['a', 'w0', 'w1']);
    expect(all.filter((l) => l.type === 'refusal_summary').map((l) => l.refused)).toEqual([8]);
    expect((await verifyFiles([path])).problem).toBeUndefined();
  });

  it('normal operation keeps every refusal one by one and writes no summary', async () => {
    const { path, metrics, sink } = await sinkIn();
    for (let i = 0; i < 20; i++) sink.write(refusal(`r${i}`, i));
    await sink.close();
    expect(await requests(path)).toHaveLength(20);
    expect((await lines(path)).some((l) => l.type === 'refusal_summary')).toBe(false);
    expect(await gauge(metrics.auditRefusalsSummarised)).toBe(0);
  });
});
