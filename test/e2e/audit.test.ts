// The audit trail through real Envoy and the gate as a process: N requests of every kind
// (admitted, refused, failed upstream, client-cancelled; streamed and not; two gate workers,
// strict durability, small files so they rotate) give exactly N records and `audit verify`
// passes with the public key; kill -9 under load leaves files that verify up to the last
// complete line, holding every request the client saw answered, and the restarted gate
// records the break and carries the chain on.
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rotatedFiles } from '../../extproc/audit/files.ts';
import { auditLine } from '../../extproc/audit/record-schema.ts';
import { runCli } from '../harness/cli.ts';
import { type Gate, makeKey, startGate } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const alice = makeKey('alice', { tenant: 'acme' });
let stack: Stack | undefined;
let restarted: Gate | undefined;
afterEach(async () => {
  await restarted?.stop('SIGKILL');
  restarted = undefined;
  await stack?.stop();
  stack = undefined;
});

async function keyPair(): Promise<{ priv: string; pub: string }> {
  const dir = await tempDir('lm-gate-audit-key-');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, 'audit-key.pem');
  const pub = join(dir, 'audit-key.pub.pem');
  await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}

type Kind = 'json' | 'stream' | 'refused' | 'upstream_500' | 'cancelled';
const KINDS: Kind[] = ['json', 'stream', 'refused', 'upstream_500', 'cancelled'];

/** One request of `kind` with its own x-request-id; resolves with the status the client saw
 * once it saw the whole answer, or 'cancelled'. */
async function send(s: Stack, kind: Kind, id: string): Promise<number | 'cancelled'> {
  const stream = kind === 'stream' || kind === 'cancelled';
  const headers: Record<string, string> = {
    authorization: `Bearer ${kind === 'refused' ? 'lmg_alice_not-the-secret' : alice.key}`,
    'content-type': 'application/json',
    'x-request-id': id,
  };
  if (kind === 'upstream_500') headers['x-mock-status'] = '500';
  if (kind === 'cancelled') Object.assign(headers, { 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '50' });
  const abort = new AbortController();
  const res = await fetch(`${s.baseURL}/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: `hi ${id}` }], stream }),
    signal: abort.signal,
  });
  if (kind === 'cancelled') {
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    await reader.cancel().catch(() => {});
    return 'cancelled';
  }
  await res.arrayBuffer();
  return res.status;
}

const auditFiles = async (path: string) => [...(await rotatedFiles(path)), path];

describe('audit trail through Envoy', () => {
  it('N mixed requests give exactly N records, and audit verify passes with the key', async () => {
    const { priv, pub } = await keyPair();
    stack = await startStack({
      keys: [alice],
      workers: 2,
      mock: { chunks: 3 },
      gateExtra: {
        audit: { durability: 'strict', signingKey: priv, rotateBytes: 16 * 1024, checkpointRecords: 7 },
      },
    });
    const s = stack;
    const want = new Map<string, Kind>();
    const statuses: Record<string, number | 'cancelled'> = {};
    // One of each kind alone first: a cold gate worker on a loaded machine can miss the message
    // deadline (504) on its first requests, which is not what this test is about.
    for (const kind of KINDS) {
      const id = `audit-e2e-warm-${kind}`;
      want.set(id, kind);
      statuses[id] = await send(s, kind, id);
    }
    for (let batch = 0; batch < 6; batch++)
      await Promise.all(
        KINDS.flatMap((kind, k) =>
          [0, 1].map(async (j) => {
            const id = `audit-e2e-${batch}-${k}-${j}`;
            want.set(id, kind);
            statuses[id] = await send(s, kind, id);
          }),
        ),
      );
    const seen = (kind: Kind) => [...want].filter(([, k]) => k === kind).map(([id]) => statuses[id]);
    expect(seen('refused')).toEqual(Array(13).fill(401));
    expect(seen('upstream_500')).toEqual(Array(13).fill(500));
    expect([...seen('json'), ...seen('stream')]).toEqual(Array(26).fill(200));
    expect(await s.gate.stop()).toBe(0);

    const files = await auditFiles(s.gate.auditPath);
    expect(files.length).toBeGreaterThan(1);
    const lines = (await Promise.all(files.map((f) => readFile(f, 'utf8'))))
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    // Every line the gate wrote is what docs/audit-record.schema.json documents.
    for (const l of lines) expect(auditLine.safeParse(l).error?.issues ?? [], JSON.stringify(l)).toEqual([]);
    const records = lines.filter((r) => r.type === 'request');
    expect(records).toHaveLength(want.size);
    const byId = new Map(records.map((r) => [r.request_id, r]));
    expect(new Set(byId.keys())).toEqual(new Set(want.keys()));
    for (const [id, kind] of want) {
      const r = byId.get(id)!;
      const expected = {
        json: { outcome: 'completed', status: 200 },
        stream: { outcome: 'completed', status: 200 },
        refused: { outcome: 'rejected', status: 401 },
        upstream_500: { outcome: 'upstream_error', status: 500 },
        cancelled: { outcome: 'cancelled' },
      }[kind];
      expect(r, `${id} (${kind})`).toMatchObject(expected);
    }

    const v = await runCli(['audit', 'verify', '--key', pub, ...files], 30_000);
    expect(v.stdout).toMatch(
      new RegExp(`^ok: ${files.length} file\\(s\\), \\d+ lines, ${want.size} records, \\d+ checkpoints`),
    );
    expect(v.stdout).toMatch(/, 0 break\(s\)/);
    expect(v.code).toBe(0);
  });

  it('kill -9 under load (strict): the files verify, every answered request is there, and a restart records the break', async () => {
    const { priv, pub } = await keyPair();
    const extra = { audit: { durability: 'strict', signingKey: priv, checkpointRecords: 25 } };
    stack = await startStack({ keys: [alice], mock: { chunks: 2 }, gateExtra: extra });
    const s = stack;
    const answered: string[] = [];
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const id = `kill9-${n++}`;
        const kind: Kind = n % 3 === 0 ? 'stream' : n % 7 === 0 ? 'refused' : 'json';
        try {
          const status = await send(s, kind, id);
          if (status === 200 || status === 401) answered.push(id);
        } catch {
          // the gate died under this request
        }
      }
    };
    const load = Array.from({ length: 8 }, worker);
    await new Promise((r) => setTimeout(r, 1500));
    await s.gate.stop('SIGKILL');
    stop = true;
    await Promise.all(load);
    expect(answered.length).toBeGreaterThan(20);

    const before = await auditFiles(s.gate.auditPath);
    const v = await runCli(['audit', 'verify', '--key', pub, ...before], 30_000);
    expect(v.stdout).toMatch(/^ok: /);
    expect(v.code).toBe(0);
    const text = (await Promise.all(before.map((f) => readFile(f, 'utf8')))).join('');
    const inFile = new Set(
      text
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === 'request')
        .map((r) => r.request_id),
    );
    // Strict durability: nothing the client saw answered is missing.
    expect(answered.filter((id) => !inFile.has(id))).toEqual([]);

    // The same folder and config, restarted: the break is recorded and the chain continues.
    restarted = await startGate([alice], { dir: s.gate.dir, extra });
    expect(await restarted.stop()).toBe(0);
    const after = await auditFiles(restarted.auditPath);
    const lines = await restarted.auditLines();
    const brk = lines.find((l) => l.type === 'break');
    for (const l of lines) expect(auditLine.safeParse(l).error?.issues ?? [], JSON.stringify(l)).toEqual([]);
    expect(brk).toMatchObject({ reason: 'the previous writer stopped without a shutdown checkpoint' });
    const v2 = await runCli(['audit', 'verify', '--key', pub, ...after], 30_000);
    expect(v2.stdout).toMatch(/, 1 break\(s\)/);
    expect(v2.stdout).toMatch(/^break: .*audit\.log:\d+ \(seq \d+\)/m);
    expect(v2.code).toBe(0);
  });
});
