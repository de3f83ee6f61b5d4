// A full disk under the audit file, through real Envoy and the gate as a process: the audit
// folder is a small tmpfs this test mounts and fills. The gate fails closed (503
// audit_unavailable, /readyz not ready), keeps every record of what it already admitted in
// memory, and once space returns writes them all: nothing is lost and the chain verifies.
// The requests it refuses meanwhile are recorded one by one up to audit.maxRefusalBytes (small
// here), the rest counted in one refusal_summary line after them: with gate workers too, whose
// records the main thread's one writer bounds.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
// Each case leaves the tmpfs as it found it, also when it fails half-way.
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  await rm(join(mnt, 'filler'), { force: true });
});
afterAll(async () => {
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

/** Bytes of refusal records kept one by one: two or three of them. */
const MAX_REFUSAL_BYTES = 2500;
/** Requests sent after the first refusal, all refused while the disk stays full. */
const MORE_REFUSED = 30;

describe.each([1, 2])('audit on a full disk (server.workers %i)', (workers) => {
  it('fails closed with 503, loses nothing already admitted, counts what it refused, and recovers when space returns', async () => {
    const path = join(mnt, `audit-${workers}.log`);
    stack = await startStack({
      keys: [alice],
      ...(workers > 1 ? { workers } : {}),
      gateExtra: {
        audit: { path, durability: 'interval', fsyncIntervalMs: 50, maxRefusalBytes: MAX_REFUSAL_BYTES },
      },
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
    for (let k = 0; k < MORE_REFUSED; k++) {
      const id = `full-${i++}`;
      answered[id] = await chat(s, id);
    }
    const admitted = Object.entries(answered)
      .filter(([, a]) => a.status === 200)
      .map(([id]) => id);
    const refused = Object.entries(answered)
      .filter(([, a]) => a.code === 'audit_unavailable')
      .map(([id]) => id);
    expect(admitted.length).toBeGreaterThan(0); // admitted once the disk was full: held in memory
    expect(refused.length).toBeGreaterThan(MORE_REFUSED);
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
    const summarisedMetric = Number(
      /lmgate_audit_refusals_summarised_total (\d+)/.exec(await s.gate.metrics())?.[1] ?? Number.NaN,
    );
    expect(await s.gate.stop()).toBe(0);

    const all = (await readFile(path, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const ids = all.filter((r) => r.type === 'request').map((r) => r.request_id as string);
    const summaries = all.filter((r) => r.type === 'refusal_summary');
    // Every admitted request is recorded; the refused ones are recorded up to the bound and
    // counted past it, in one summary after the last one kept: each exactly once.
    const kept = refused.filter((id) => ids.includes(id));
    expect(ids.toSorted()).toEqual(['before-full', ...admitted, ...kept, 'after-full'].toSorted());
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(5);
    expect(summaries).toHaveLength(1);
    const summary = summaries[0]!;
    expect(summary.refused).toBe(refused.length - kept.length);
    expect(summarisedMetric).toBe(refused.length - kept.length);
    expect(summary.groups).toEqual([
      expect.objectContaining({
        tenant: null,
        route: null,
        api: 'openai.chat',
        status: 503,
        code: 'audit_unavailable',
      }),
    ]);
    const counted = refused.filter((id) => !ids.includes(id));
    expect(counted).toContain(summary.groups[0].first_request_id);
    expect(counted).toContain(summary.groups[0].last_request_id);
    const summaryAt = all.indexOf(summary);
    for (const id of kept) expect(all.findIndex((r) => r.request_id === id)).toBeLessThan(summaryAt);
    if (workers === 1) {
      // One thread answers in order: the first refusals are the ones kept.
      expect(kept).toEqual(refused.slice(0, kept.length));
      expect(summary.groups[0].last_request_id).toBe(refused.at(-1));
    }
    const v = await runCli(['audit', 'verify', path], 30_000);
    expect(v.stdout).toMatch(/^ok: /);
    expect(v.stdout).toContain(`refusal summaries: 1 line(s) count ${summary.refused} refused request(s)`);
    expect(v.code).toBe(0);
  });
});
