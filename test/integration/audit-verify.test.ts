// lm-gate audit verify over files the real writer made (rotated, signed): the set passes, and
// changing, deleting, reordering or inserting any single line in any file, removing a whole
// file, or re-hashing the chain after an edit, fails naming the first bad line and why.
import { generateKeyPairSync } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { GENESIS, sha256Hex } from '../../extproc/audit/chain.ts';
import { rotatedFiles } from '../../extproc/audit/files.ts';
import type { AuditRecord } from '../../extproc/audit/record.ts';
import { FileAuditSink } from '../../extproc/audit/sink.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { runCli } from '../harness/cli.ts';

let dir: string;
let files: string[];
let pub: string;

const rec = (i: number) =>
  ({ schema_version: 2, request_id: `req-${i}`, principal: { tenant: 'acme' }, status: 200 }) as unknown as AuditRecord;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'audit-verify-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writeFile(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  pub = join(dir, 'pub.pem');
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  const path = join(dir, 'orig', 'audit.log');
  await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'orig')));
  const sink = new FileAuditSink({
    path,
    maxPendingBytes: 1 << 20,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    rotateBytes: 4096,
    checkpointRecords: 10,
    signingKey: join(dir, 'key.pem'),
  });
  await sink.open();
  for (let i = 0; i < 120; i++) {
    sink.write(rec(i));
    if (i % 5 === 4) await sink.flush();
  }
  await sink.close();
  files = [...(await rotatedFiles(path)), path];
  expect(files.length).toBeGreaterThanOrEqual(4);
});

/** A fresh copy of the set; returns the copies' paths in the same order. */
let copyN = 0;
async function copySet(): Promise<string[]> {
  const to = join(dir, `copy-${copyN++}`);
  await cp(join(dir, 'orig'), to, { recursive: true });
  return files.map((f) => join(to, f.slice(join(dir, 'orig').length + 1)));
}
const read = async (f: string) => (await readFile(f, 'utf8')).split('\n').slice(0, -1);
const write = (f: string, lines: string[]) => writeFile(f, `${lines.join('\n')}\n`);

describe('lm-gate audit verify', () => {
  it('passes the untouched set, with every signature checked', async () => {
    const r = await runCli(['audit', 'verify', '--key', pub, ...(await copySet())]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^ok: \d+ file\(s\), \d+ lines, 120 records, \d+ checkpoints \((\d+) signature\(s\) checked by key \S+\), 0 break\(s\)/,
    );
    const [, checkpoints, signed] = /(\d+) checkpoints \((\d+) signature/.exec(r.stdout)!;
    expect(signed).toBe(checkpoints);
  });

  // Each row tampers with file `file` (index into the set; -1 = the active file) at line `line`
  // (1-based), and expects the failure at that file and line.
  const rows: {
    name: string;
    file: number;
    tamper: (lines: string[], i: number) => string[];
    line: number;
    seen: (line: number) => number;
    why: RegExp;
  }[] = [
    {
      name: 'a changed record',
      file: 1,
      line: 5,
      tamper: (l, i) => l.with(i, l[i]!.replace('"status":200', '"status":403')),
      seen: (n) => n,
      why: /its hash does not match the prev of the next line .*: this line was changed/,
    },
    {
      name: 'a deleted record',
      file: 2,
      line: 4,
      tamper: (l, i) => l.toSpliced(i, 1),
      seen: (n) => n,
      why: /seq jumps from \d+ to \d+: 1 line\(s\) missing — deleted/,
    },
    {
      name: 'two records swapped',
      file: 0,
      line: 6,
      tamper: (l, i) => l.with(i, l[i + 1]!).with(i + 1, l[i]!),
      seen: (n) => n,
      why: /seq \d+ where|seq jumps/,
    },
    {
      name: 'an inserted record (a copy of another)',
      file: -1,
      line: 3,
      tamper: (l, i) => l.toSpliced(i, 0, l[i + 1]!),
      seen: (n) => n,
      why: /inserted|seq jumps/,
    },
  ];
  for (const row of rows)
    it(`fails on ${row.name}, naming its file and line`, async () => {
      const set = await copySet();
      const f = set.at(row.file)!;
      const lines = await read(f);
      await write(f, row.tamper(lines, row.line - 1));
      const r = await runCli(['audit', 'verify', '--key', pub, ...set]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`^FAIL ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+) \\(seq \\d+\\): `));
      const line = Number(/:(\d+) \(seq/.exec(r.stdout)![1]);
      expect(line).toBe(row.line);
      expect(r.stdout).toMatch(row.why);
    });

  it('fails when a whole rotated file is removed from the set', async () => {
    const set = await copySet();
    await rm(set[1]!);
    const r = await runCli(['audit', 'verify', '--key', pub, ...set.toSpliced(1, 1)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`FAIL ${set[2]}:1`);
    expect(r.stdout).toMatch(/a file was removed/);
  });

  it('fails when the oldest file is removed, unless --partial says retention did it', async () => {
    const set = (await copySet()).slice(1);
    const r = await runCli(['audit', 'verify', '--key', pub, ...set]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/earlier files are missing/);
    expect((await runCli(['audit', 'verify', '--key', pub, '--partial', ...set])).code).toBe(0);
  });

  it('a changed record with the chain re-hashed after it is caught by the next signed checkpoint', async () => {
    const set = await copySet();
    const f = set[1]!;
    const lines = await read(f);
    const i = lines.findIndex((l) => l.includes('"type":"request"'));
    lines[i] = lines[i]!.replace('"status":200', '"status":403');
    // Re-hash every later line of the whole set, checkpoints' prev_checkpoint included, as a
    // forger without the key would: the chain holds again, the signatures cannot.
    let prev = sha256Hex(lines[i]!);
    let lastCheckpoint = '';
    for (const l of lines.slice(0, i)) if (l.includes('"type":"checkpoint"')) lastCheckpoint = sha256Hex(l);
    const fix = (l: string) => {
      let o = l.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${prev}"`);
      if (o.includes('"type":"checkpoint"')) {
        o = o.replace(/"prev_checkpoint":"[0-9a-f]{64}"/, `"prev_checkpoint":"${lastCheckpoint}"`);
        lastCheckpoint = sha256Hex(o);
      }
      prev = sha256Hex(o);
      return o;
    };
    await write(f, [...lines.slice(0, i + 1), ...lines.slice(i + 1).map(fix)]);
    for (const g of set.slice(2)) await write(g, (await read(g)).map(fix));
    const unsigned = await runCli(['audit', 'verify', ...set]);
    expect(unsigned.code).toBe(0); // the chain alone cannot tell: this is what the key is for
    expect(unsigned.stdout).toMatch(/signatures not checked/);
    const signed = await runCli(['audit', 'verify', '--key', pub, ...set]);
    expect(signed.code).toBe(1);
    expect(signed.stdout).toMatch(
      new RegExp(
        `^FAIL ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+ \\(seq \\d+\\): checkpoint line differs from what was signed`,
      ),
    );
    expect(GENESIS).toHaveLength(64);
  });

  it('reports a torn last line as a note, not a failure (a crash mid-write)', async () => {
    const set = await copySet();
    const last = set.at(-1)!;
    await writeFile(last, `${await readFile(last, 'utf8')}{"type":"request","seq":`);
    const r = await runCli(['audit', 'verify', '--key', pub, ...set]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/incomplete last line ignored/);
  });
});
