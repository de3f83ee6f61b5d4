// lm-gate audit query over files the real writer made (rotated and active, checkpoints among
// the records): each filter, the three formats, and the README's one-command question "every
// request of tenant X to route Y last month with a PHI finding".
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { rotatedFiles } from '../../extproc/audit/files.ts';
import type { AuditRecord } from '../../extproc/audit/record.ts';
import { FileAuditSink } from '../../extproc/audit/sink.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { sinkRefusalRecord } from '../harness/audit-records.ts';
import { runCli } from '../harness/cli.ts';

let files: string[];

interface Row {
  id: string;
  time: string;
  tenant: string | null;
  route: string | null;
  model?: string;
  team?: string;
  user?: string;
  dlp?: { findings: { type: string; count: number }[]; data_classes: string[] };
  deny?: string;
}
const rows: Row[] = [
  {
    id: 'a',
    time: '2026-10-05T10:00:00.000Z',
    tenant: 'acme',
    route: 'hipaa',
    dlp: { findings: [{ type: 'MRN', count: 1 }], data_classes: ['phi'] },
  },
  { id: 'b', time: '2026-10-06T10:00:00.000Z', tenant: 'acme', route: 'hipaa' },
  {
    id: 'c',
    time: '2026-10-07T10:00:00.000Z',
    tenant: 'acme',
    route: 'default',
    dlp: { findings: [{ type: 'MRN', count: 2 }], data_classes: ['phi'] },
  },
  {
    id: 'd',
    time: '2026-10-08T10:00:00.000Z',
    tenant: 'globex',
    route: 'hipaa',
    dlp: { findings: [{ type: 'ICD10', count: 1 }], data_classes: ['phi'] },
  },
  {
    id: 'e',
    time: '2026-11-02T10:00:00.000Z',
    tenant: 'acme',
    route: 'hipaa',
    dlp: { findings: [{ type: 'MRN', count: 1 }], data_classes: ['phi'] },
  },
  {
    id: 'f',
    time: '2026-10-20T10:00:00.000Z',
    tenant: 'acme',
    route: 'hipaa',
    dlp: { findings: [{ type: 'EMAIL', count: 1 }], data_classes: ['pii'] },
  },
  {
    id: 'g',
    time: '2026-10-21T10:00:00.000Z',
    tenant: 'acme',
    route: 'hipaa',
    team: 'claims',
    user: 'ann',
    model: 'llama',
    dlp: { findings: [{ type: 'NPI', count: 1 }], data_classes: ['phi'] },
  },
  { id: 'h', time: '2026-10-22T10:00:00.000Z', tenant: null, route: null, deny: 'policy.rules.no-phi-outside' },
];

function record(r: Row): AuditRecord {
  return {
    schema_version: 2,
    time: r.time,
    request_id: r.id,
    principal: r.tenant
      ? {
          id: 'k',
          key_id: 'k',
          tenant: r.tenant,
          team: r.team ?? null,
          user: r.user ?? null,
          roles: [],
          method: 'api_key',
          issuer: 'config',
        }
      : null,
    gen_ai: {
      operation: { name: 'chat' },
      request: { model: r.model ?? 'gpt', max_tokens: null },
      response: { model: null },
      usage: null,
    },
    route: r.route,
    status: r.deny ? 403 : 200,
    outcome: r.deny ? 'rejected' : 'completed',
    error: r.deny ? { code: 'policy_denied', type: 'permission_error', status: 403, rule_id: r.deny } : null,
    decisions: r.deny ? [{ stage: 'policy.rules', rule_id: r.deny, effect: 'deny', reason: 'x' }] : [],
    ...(r.dlp ? { dlp: r.dlp } : {}),
  } as unknown as AuditRecord;
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'audit-query-'));
  const path = join(dir, 'audit.log');
  const sink = new FileAuditSink({
    path,
    maxPendingBytes: 1 << 20,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    rotateBytes: 4096,
    checkpointRecords: 3,
  });
  await sink.open();
  for (const r of rows) {
    sink.write(record(r));
    await sink.flush();
  }
  await sink.close();
  files = [...(await rotatedFiles(path)), path];
  expect(files.length).toBeGreaterThan(1);
});

const ids = async (args: string[]) => {
  const r = await runCli(['audit', 'query', '--format', 'json', ...args, ...files], 30_000);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).request_id);
};

describe('lm-gate audit query', () => {
  it('answers the README question in one command', async () => {
    expect(
      await ids([
        '--tenant',
        'acme',
        '--route',
        'hipaa',
        '--dlp',
        'phi',
        '--since',
        '2026-10-01',
        '--until',
        '2026-11-01',
      ]),
    ).toEqual(['a', 'g']);
  });

  it.each([
    [
      ['--dlp', 'MRN'],
      ['a', 'c', 'e'],
    ],
    [['--dlp', 'pii'], ['f']],
    [['--team', 'claims'], ['g']],
    [['--user', 'ann'], ['g']],
    [['--model', 'llama'], ['g']],
    [['--rule', 'policy.rules.no-phi-outside'], ['h']],
    [['--effect', 'deny'], ['h']],
    [['--outcome', 'rejected'], ['h']],
    [['--since', '2026-11-01'], ['e']],
    [['--tenant', 'globex'], ['d']],
  ])('filters %j', async (args, want) => {
    expect(await ids(args)).toEqual(want);
  });

  it('prints a table and CSV', async () => {
    const table = await runCli(['audit', 'query', '--tenant', 'globex', ...files], 30_000);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^time\s+request_id\s+tenant\s+team\s+user\s+model\s+route\s+status\s+outcome\s+refused_by\s+dlp$/,
    );
    expect(table.stdout).toMatch(
      /2026-10-08T10:00:00.000Z\s+d\s+globex\s+-\s+-\s+gpt\s+hipaa\s+200\s+completed\s+-\s+(phi ICD10|ICD10 phi)\n\(1 record\)\n$/,
    );
    const csv = await runCli(['audit', 'query', '--format', 'csv', '--outcome', 'rejected', ...files], 30_000);
    expect(csv.stdout).toBe(
      'time,request_id,tenant,team,user,model,route,status,outcome,refused_by,dlp\n2026-10-22T10:00:00.000Z,h,,,,gpt,,403,rejected,policy.rules.no-phi-outside,\n',
    );
  });

  it('refuses a time it cannot read', async () => {
    const r = await runCli(['audit', 'query', '--since', 'last tuesday', ...files]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--since "last tuesday" is neither a date/);
  });

  it('lists no refusal_summary line as a record, and notes the refusals one counts in the period asked', async () => {
    // A real writer whose folder is missing: the refusals past maxRefusalBytes are counted, and
    // the summary is written once the folder exists.
    const dir = await mkdtemp(join(tmpdir(), 'audit-query-summary-'));
    const path = join(dir, 'sub', 'audit.log');
    const refusal = sinkRefusalRecord;
    const sink = new FileAuditSink({
      path,
      maxPendingBytes: 1 << 20,
      maxRefusalBytes: 1,
      logger: pino({ level: 'silent' }),
      metrics: new Metrics({ defaultMetrics: false }),
    });
    sink.write(record(rows[0]!));
    for (let i = 0; i < 5; i++) sink.write(refusal(`q${i}`, `2026-10-10T10:00:0${i}.000Z`));
    await new Promise((r) => setTimeout(r, 30));
    await mkdir(join(dir, 'sub'));
    await sink.close();
    const query = (...args: string[]) => runCli(['audit', 'query', '--format', 'json', ...args, path], 30_000);
    const all = await query();
    expect(all.code).toBe(0);
    expect(
      all.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).request_id),
    ).toEqual(['a']);
    expect(all.stderr).toBe(
      'note: 5 refused request(s) (503 audit_unavailable) in this period are counted in refusal_summary lines, not listed one by one (docs/audit.md)\n',
    );
    const after = await query('--since', '2026-10-11');
    expect(after.code).toBe(0);
    expect(after.stderr).toBe('');
  });
});
