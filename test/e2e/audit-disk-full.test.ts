// A full disk under the audit file, through real Envoy and the gate as a process: the audit
// folder is a small tmpfs this test mounts and fills. The gate fails closed (503
// audit_unavailable, /readyz not ready), keeps every record of what it already admitted in
// memory, and once space returns writes them all: nothing is lost and the chain verifies.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../harness/cli.ts';
import { makeKey } from '../harness/gate.ts';
import { waitFor } from '../harness/ports.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme' });
let mnt: string;
let stack: Stack | undefined;

beforeAll(async () => {
  mnt = await mkdtemp(join(tmpdir(), 'lm-gate-audit-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
});
afterAll(async () => {
  await stack?.stop();
  execFileSync('umount', [mnt]);
  await rm(mnt, { recursive: true, force: true });
});

async function chat(s: Stack, id: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${s.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, ...(body.error?.code ? { code: body.error.code } : {}) };
}

describe('audit on a full disk', () => {
  it('fails closed with 503, loses nothing already admitted, and recovers when space returns', async () => {
    const path = join(mnt, 'audit.log');
    stack = await startStack({
      keys: [alice],
      gateExtra: { audit: { path, durability: 'interval', fsyncIntervalMs: 50 } },
    });
    const s = stack;
    expect((await chat(s, 'before-full')).status).toBe(200);

    // Fill the tmpfs: the filler takes every free byte (its write stops at ENOSPC).
    const filler = join(mnt, 'filler');
    await writeFile(filler, Buffer.alloc(1 << 20)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOSPC') throw err;
    });

    const answered: Record<string, { status: number; code?: string }> = {};
    let i = 0;
    await waitFor(
      'a 503 audit_unavailable',
      async () => {
        const id = `full-${i++}`;
        answered[id] = await chat(s, id);
        return answered[id]!.code === 'audit_unavailable' ? true : undefined;
      },
      10_000,
    );
    const admitted = Object.entries(answered)
      .filter(([, a]) => a.status === 200)
      .map(([id]) => id);
    const refused = Object.entries(answered)
      .filter(([, a]) => a.code === 'audit_unavailable')
      .map(([id]) => id);
    expect(admitted.length).toBeGreaterThan(0); // admitted once the disk was full: held in memory
    expect(refused.length).toBeGreaterThan(0);
    expect(answered[refused[0]!]!.status).toBe(503);
    expect((await fetch(`http://127.0.0.1:${s.gate.adminPort}/readyz`)).status).toBe(503);
    expect(await s.gate.metrics()).toMatch(/lmgate_audit_write_errors_total [1-9]/);

    // Space returns: everything held is written, and requests are admitted again.
    await rm(filler);
    await waitFor(
      'gate ready again',
      async () => ((await fetch(`http://127.0.0.1:${s.gate.adminPort}/readyz`)).status === 200 ? true : undefined),
      10_000,
    );
    expect((await chat(s, 'after-full')).status).toBe(200);
    expect(await s.gate.stop()).toBe(0);

    const ids = (await readFile(path, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'request')
      .map((r) => r.request_id);
    // Every request that reached the gate, admitted or refused, exactly once.
    expect(ids.toSorted()).toEqual(['before-full', ...admitted, ...refused, 'after-full'].toSorted());
    const v = await runCli(['audit', 'verify', path], 30_000);
    expect(v.stdout).toMatch(/^ok: /);
    expect(v.code).toBe(0);
  });
});
