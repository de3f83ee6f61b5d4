// Capture lines through the audit sink and `audit verify`: written beside the chain in record
// order, rotated, linked by SHA-256; verify passes with them, fails on a changed or unlinked
// line, and still passes (reporting them erased) when capture files are deleted.
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../telemetry/metrics.ts';
import { sha256Hex } from './chain.ts';
import { rotatedFiles } from './files.ts';
import type { AuditRecord } from './record.ts';
import { FileAuditSink, type FileAuditSinkOptions } from './sink.ts';
import { verifyFiles } from './verify.ts';

const logger = pino({ level: 'silent' });

const at = (i: number) => new Date(Date.UTC(2026, 10, 24, 0, 0, i)).toISOString();

function captured(id: string, time = at(0), text = `prompt of ${id}`): { record: AuditRecord; line: string } {
  const line = JSON.stringify({
    type: 'capture',
    request_id: id,
    time,
    rule: 'r',
    prompt: [{ role: 'user', text }],
    response: null,
    chars: { prompt: text.length, response: null },
    truncated: { prompt: false, response: false },
  });
  const record = {
    schema_version: 2,
    request_id: id,
    time,
    capture: { sha256: sha256Hex(line), rule: 'r' },
  } as unknown as AuditRecord;
  return { record, line };
}

async function writeSet(n: number, over: Partial<FileAuditSinkOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'capture-'));
  const path = join(dir, 'audit.log');
  const capturePath = join(dir, 'audit-capture.log');
  const sink = new FileAuditSink({
    path,
    capturePath,
    maxPendingBytes: 1 << 20,
    logger,
    metrics: new Metrics({ defaultMetrics: false }),
    ...over,
  });
  for (let i = 0; i < n; i++) {
    if (i % 3 === 2)
      sink.write({ schema_version: 2, request_id: `plain-${i}`, time: at(i), capture: null } as unknown as AuditRecord);
    else {
      const { record, line } = captured(`c-${i}`, at(i));
      sink.write(record, undefined, line);
    }
    // Batches of a few records: a file rotates between batches, like the audit file.
    if (i % 4 === 0) await sink.flush();
  }
  await sink.close();
  const audit = [...(await rotatedFiles(path)), path];
  const capture = [...(await rotatedFiles(capturePath)), capturePath];
  return { dir, path, capturePath, audit, capture };
}

const nonEmpty = (s: string) => s.split('\n').filter(Boolean);

describe('capture files', () => {
  it('hold one line per captured record, in record order, each the bytes its record hashes', async () => {
    const { path, capturePath, audit, capture } = await writeSet(9);
    const records = nonEmpty(await readFile(path, 'utf8'))
      .map((l) => JSON.parse(l))
      .filter((o) => o.type === 'request');
    const lines = nonEmpty(await readFile(capturePath, 'utf8'));
    expect(lines.map((l) => JSON.parse(l).request_id)).toEqual(['c-0', 'c-1', 'c-3', 'c-4', 'c-6', 'c-7']);
    const linked = records.filter((r) => r.capture !== null);
    expect(linked.map((r) => r.capture.sha256)).toEqual(lines.map((l) => sha256Hex(l)));
    const report = await verifyFiles([...audit, ...capture]);
    expect(report.problem).toBeUndefined();
    expect(report.captures).toEqual({ files: 1, lines: 6, matched: 6, erased: 0, unlinked: 0 });
    expect(report.files).toBe(1);
  });

  it('rotate with the audit file settings, named so that sorting sorts them', async () => {
    const { audit, capture } = await writeSet(120, { rotateBytes: 4096 });
    expect(capture.length).toBeGreaterThan(2);
    const ids = (await Promise.all(capture.map((f) => readFile(f, 'utf8'))))
      .flatMap(nonEmpty)
      .map((l) => JSON.parse(l).request_id);
    expect(ids).toHaveLength(80);
    expect(ids).toEqual([...ids].sort((a, b) => Number(a.slice(2)) - Number(b.slice(2))));
    const report = await verifyFiles([...capture, ...audit]);
    expect(report.problem).toBeUndefined();
    expect(report.captures.matched).toBe(80);
  });

  it('verify fails on a changed capture line and names it', async () => {
    const { audit, capture, capturePath } = await writeSet(6);
    const text = await readFile(capturePath, 'utf8');
    await writeFile(capturePath, text.replace('prompt of c-3', 'prompt of c-X'));
    const report = await verifyFiles([...audit, ...capture]);
    expect(report.problem).toMatchObject({ file: capturePath, line: 3 });
    expect(report.problem?.reason).toMatch(/capture line of request "c-3" does not match .* it was changed/);
  });

  it('verify fails on a capture line no record links (inserted), unless the set is partial', async () => {
    const { audit, capture, capturePath } = await writeSet(3);
    await appendFile(capturePath, `${captured('forged', at(1)).line}\n`);
    const report = await verifyFiles([...audit, ...capture]);
    expect(report.problem).toMatchObject({ file: capturePath, line: 3 });
    expect(report.problem?.reason).toMatch(/among the records that no record links/);
    expect((await verifyFiles([...audit, ...capture], { partial: true })).problem).toBeUndefined();
  });

  it('a capture line of a request after the last record (its record lost in a crash) is a note, not a failure', async () => {
    const { audit, capture, capturePath } = await writeSet(3);
    await appendFile(capturePath, `${captured('lost-record', at(60)).line}\n`);
    const report = await verifyFiles([...audit, ...capture]);
    expect(report.problem).toBeUndefined();
    expect(report.captures.unlinked).toBe(1);
    expect(report.notes.join('\n')).toMatch(/1 capture line\(s\) of requests after the last record/);
  });

  it('verify passes with the capture files deleted, and counts the captures as erased', async () => {
    const { audit, capture, capturePath } = await writeSet(6);
    for (const f of capture) await rm(f);
    const report = await verifyFiles(audit);
    expect(report.problem).toBeUndefined();
    expect(report.captures).toMatchObject({ files: 0, matched: 0, erased: 4 });
    expect(report.notes.join('\n')).toMatch(/4 record\(s\) link a capture line not in the set: erased/);
    // One line erased from a file (an erasure request): only that one is missing.
    const again = await writeSet(6);
    const lines = nonEmpty(await readFile(again.capturePath, 'utf8'));
    await writeFile(again.capturePath, `${lines.filter((l) => !l.includes('"c-1"')).join('\n')}\n`);
    const r2 = await verifyFiles([...again.audit, ...again.capture]);
    expect(r2.problem).toBeUndefined();
    expect(r2.captures).toMatchObject({ matched: 3, erased: 1 });
    expect(capturePath).not.toBe(again.capturePath);
  });

  it('strict durability: a request is durable only once its capture line is written too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'capture-'));
    const path = join(dir, 'audit.log');
    const capturePath = join(dir, 'capture.log');
    const sink = new FileAuditSink({
      path,
      capturePath,
      durability: 'strict',
      maxPendingBytes: 1 << 20,
      logger,
      metrics: new Metrics({ defaultMetrics: false }),
    });
    const { record, line } = captured('strict');
    const seen = await new Promise<string>((resolve) => {
      sink.write(record, () => void readFile(capturePath, 'utf8').then(resolve), line);
    });
    expect(seen).toBe(`${line}\n`);
    await sink.close();
  });

  it('a capture file that cannot be written stops new requests (not accepting) and loses nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'capture-'));
    const path = join(dir, 'audit.log');
    const capturePath = join(dir, 'later', 'capture.log');
    const metrics = new Metrics({ defaultMetrics: false });
    const sink = new FileAuditSink({ path, capturePath, maxPendingBytes: 1 << 20, logger, metrics });
    const { record, line } = captured('waits');
    sink.write(record, undefined, line);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.accepting).toBe(false);
    await mkdir(join(dir, 'later'));
    await sink.close();
    expect(sink.accepting).toBe(true);
    expect(nonEmpty(await readFile(capturePath, 'utf8'))).toEqual([line]);
    expect((await metrics.registry.getSingleMetric('lmgate_audit_captures_total')?.get())?.values[0]?.value).toBe(1);
    expect(
      (await metrics.registry.getSingleMetric('lmgate_audit_write_errors_total')?.get())?.values[0]?.value,
    ).toBeGreaterThan(0);
    expect((await verifyFiles([path, capturePath])).captures).toMatchObject({ matched: 1, erased: 0 });
  });

  it('a torn last capture line (a crash mid-write) is cut when the writer reopens the file', async () => {
    const { dir, path, capturePath } = await writeSet(3);
    await appendFile(capturePath, '{"type":"capture","request_id":"torn","pro');
    const sink = new FileAuditSink({
      path,
      capturePath,
      maxPendingBytes: 1 << 20,
      logger,
      metrics: new Metrics({ defaultMetrics: false }),
    });
    const { record, line } = captured('after');
    sink.write(record, undefined, line);
    await sink.close();
    const ids = nonEmpty(await readFile(capturePath, 'utf8')).map((l) => JSON.parse(l).request_id);
    expect(ids).toEqual(['c-0', 'c-1', 'after']);
    expect(dir).toBeTruthy();
  });
});
