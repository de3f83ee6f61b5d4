// lm-gate report over JSONL audit files: grouping, the window, currencies kept apart, and lines
// that are not request records skipped. Totals over records from a real gate run are checked
// against the records themselves in test/e2e/metering.test.ts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness/temp-dirs.ts';
import { formatReport, parseReportArgs, runReport } from './report.ts';

const rec = (
  time: string,
  tenant: string,
  model: string,
  inp: number,
  out: number,
  cost: [number, string] | null,
  project?: string,
) =>
  JSON.stringify({
    schema_version: 2,
    time,
    request_id: `${time}-${tenant}-${model}`,
    principal: { tenant, team: `${tenant}-team`, key_id: 'k1' },
    endpoint: { api: 'openai.chat' },
    gen_ai: { request: { model }, usage: inp === 0 && out === 0 ? null : { input_tokens: inp, output_tokens: out } },
    upstream_model: model,
    route: null,
    outcome: 'completed',
    metering: { cost: cost && { amount: cost[0], currency: cost[1] }, labels: project ? { project } : {} },
  });

describe('lm-gate report', () => {
  it('groups, windows, keeps currencies apart and skips lines that are not request records', async () => {
    const dir = await tempDir('report');
    const file = join(dir, 'audit.log');
    await writeFile(
      file,
      [
        rec('2026-11-01T10:00:00.000Z', 'acme', 'gpt-4o', 100, 10, [0.5, 'USD'], 'apollo'),
        rec('2026-11-01T11:00:00.000Z', 'acme', 'gpt-4o', 200, 20, [0.25, 'USD'], 'apollo'),
        rec('2026-11-01T12:00:00.000Z', 'acme', 'llama', 50, 5, [0.1, 'EUR']),
        rec('2026-11-02T12:00:00.000Z', 'globex', 'gpt-4o', 0, 0, null),
        rec('2026-12-01T00:00:00.000Z', 'acme', 'gpt-4o', 999, 999, [9, 'USD']), // outside: --to is exclusive
        JSON.stringify({
          type: 'checkpoint',
          time: '2026-11-01T12:00:00.000Z',
          request_id: 'x',
          schema_version: 2,
          hash: 'abc',
        }),
        'not json at all',
        '',
      ].join('\n'),
    );
    const rows = await runReport({ from: '2026-11-01', to: '2026-12-01', by: ['tenant', 'model'], files: [file] });
    expect(rows).toEqual([
      {
        tenant: 'acme',
        model: 'gpt-4o',
        currency: 'USD',
        requests: 2,
        input_tokens: 300,
        output_tokens: 30,
        total_tokens: 330,
        cost: 0.75,
      },
      {
        tenant: 'acme',
        model: 'llama',
        currency: 'EUR',
        requests: 1,
        input_tokens: 50,
        output_tokens: 5,
        total_tokens: 55,
        cost: 0.1,
      },
      {
        tenant: 'globex',
        model: 'gpt-4o',
        currency: null,
        requests: 1,
        input_tokens: 0,
        output_tokens: 0,
        total_tokens: 0,
        cost: null,
      },
    ]);
    const byLabel = await runReport({ from: '2026-11-01', to: '2026-11-02', by: ['label.project'], files: [file] });
    expect(byLabel.map((r) => [r['label.project'], r.requests])).toEqual([
      ['apollo', 2],
      [null, 1],
    ]);
    const csv = formatReport(rows.slice(0, 1), ['tenant', 'currency', 'requests', 'cost'], 'csv');
    expect(csv).toBe('tenant,currency,requests,cost\nacme,USD,2,0.75\n');
    // the table: numbers right-aligned, cost to six places, a missing value as "-"
    const table = formatReport([rows[0]!, rows[2]!], ['tenant', 'currency', 'requests', 'cost'], 'table');
    expect(table).toBe(
      [
        'tenant  currency  requests      cost',
        '------  --------  --------  --------',
        'acme    USD              2  0.750000',
        'globex  -                1         -',
        '',
      ].join('\n'),
    );
  });

  it('reports its progress while it reads a large log (the CLI draws its bar from it)', async () => {
    const dir = await tempDir('report-progress');
    const file = join(dir, 'audit.log');
    const lines: string[] = [];
    for (let i = 0; i < 60_000; i++)
      lines.push(rec(`2026-11-01T10:00:${String(i % 60).padStart(2, '0')}.000Z`, `t${i % 7}`, 'm', 1, 2, [0.1, 'USD']));
    await writeFile(file, lines.join('\n'));
    const seen: number[] = [];
    const rows = await runReport(
      { from: '2026-11-01', to: '2026-11-02', by: ['tenant'], files: [file] },
      (p) => seen.push(p),
      1,
    );
    expect(rows.reduce((n, r) => n + (r.requests as number), 0)).toBe(60_000);
    // DuckDB tracks progress only with its progress bar enabled: without it every poll reads -1
    expect(seen.length).toBeGreaterThan(0);
    for (const p of seen) expect(p).toBeGreaterThanOrEqual(0);
    for (const p of seen) expect(p).toBeLessThanOrEqual(100);
  });

  it('refuses unknown dimensions, bad times and a missing file list', () => {
    expect(() => parseReportArgs(['--from', '2026-11-01', '--to', '2026-12-01', '--by', 'tenant;drop', 'f'])).toThrow(
      /unknown dimension/,
    );
    expect(() => parseReportArgs(['--from', "2026-11-01' OR 1=1", '--to', '2026-12-01', 'f'])).toThrow(/not a date/);
    expect(() => parseReportArgs(['--from', '2026-11-01', '--to', '2026-12-01'])).toThrow(/FILE/);
  });
});
