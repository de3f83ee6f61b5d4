import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../telemetry/metrics.ts';
import type { AuditRecord } from './record.ts';
import { FileAuditSink } from './sink.ts';

const logger = pino({ level: 'silent' });
const rec = (id: string) => ({ schema_version: 2, request_id: id }) as unknown as AuditRecord;

describe('FileAuditSink', () => {
  it('writes one JSON line per record, in order, across concurrent writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sink-'));
    const sink = new FileAuditSink({
      path: join(dir, 'a.log'),
      maxPendingBytes: 1 << 20,
      logger,
      metrics: new Metrics({ defaultMetrics: false }),
    });
    for (let i = 0; i < 500; i++) {
      sink.write(rec(String(i)));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await sink.close();
    const lines = (await readFile(join(dir, 'a.log'), 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).request_id)).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  });

  it('stops accepting past maxPendingBytes but keeps every record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sink-'));
    const sink = new FileAuditSink({
      path: join(dir, 'a.log'),
      maxPendingBytes: 100,
      logger,
      metrics: new Metrics({ defaultMetrics: false }),
    });
    for (let i = 0; i < 10; i++) sink.write(rec(`r${i}`));
    expect(sink.accepting).toBe(false);
    await sink.flush();
    expect(sink.accepting).toBe(true);
    await sink.close();
    expect((await readFile(join(dir, 'a.log'), 'utf8')).trim().split('\n')).toHaveLength(10);
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
    expect(
      (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).request_id),
    ).toEqual(['x', 'y']);
    expect(await metrics.registry.getSingleMetricAsString('lmgate_audit_write_errors_total')).toMatch(/ [1-9]/);
  });
});
