// The shared kill set reaches gate workers (server.workers: 2) from the main thread that follows
// Redis: a change is pushed to every worker at once, and a worker started after it (a restart
// after its thread died) starts with the current set, not an empty one.
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { FileAuditSink } from '../../extproc/audit/sink.ts';
import { parseConfig } from '../../extproc/config/load.ts';
import { hashApiKey } from '../../extproc/identity/api-keys.ts';
import { KillSetBuilder } from '../../extproc/killswitch/kill-set.ts';
import { WorkerPool } from '../../extproc/server/workers.ts';
import { Metrics } from '../../extproc/telemetry/metrics.ts';
import { chatHeadersFor, ExtProcClient, requestHeaders } from '../harness/ext-proc-client.ts';
import { makeKey } from '../harness/gate.ts';
import { freeConsecutivePorts, waitFor } from '../harness/ports.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const alice = makeKey('alice');
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function statusAt(port: number): Promise<number | 'admitted'> {
  const client = new ExtProcClient(`127.0.0.1:${port}`);
  const s = client.open();
  try {
    const a = await s.exchange(requestHeaders(chatHeadersFor(alice.key)));
    return a.immediateResponse?.status.code ?? 'admitted';
  } finally {
    s.cancel();
    client.close();
  }
}

it('a kill is pushed to every worker, and a restarted worker starts with it', async () => {
  const dir = await tempDir('lm-gate-kill-workers-');
  const first = await freeConsecutivePorts(2);
  const config = parseConfig(
    JSON.stringify({
      server: { grpcAddress: `127.0.0.1:${first}`, workers: 2, parseWorkers: 0 },
      identity: { apiKeys: [{ id: 'alice', sha256: hashApiKey(alice.key), tenant: 'acme' }] },
      audit: { path: join(dir, 'audit.log') },
    }),
    'x',
    {},
  );
  const logger = pino({ level: 'silent' });
  const metrics = new Metrics({ defaultMetrics: false });
  const audit = new FileAuditSink({ path: config.audit.path, maxPendingBytes: 1 << 20, logger, metrics });
  const pool = new WorkerPool({ config, count: 2, logger, metrics, audit });
  cleanups.push(() => audit.close());
  cleanups.push(() => pool.drain(1000));
  await pool.start();
  const ports = [first, first + 1];
  expect(await Promise.all(ports.map(statusAt))).toEqual(['admitted', 'admitted']);

  const kills = new KillSetBuilder();
  kills.set('key', 'alice', { at: Date.now(), source: 'cli' });
  pool.setKills(kills.build());
  await waitFor('both workers refuse', async () =>
    (await Promise.all(ports.map(statusAt))).every((s) => s === 401) ? true : undefined,
  );

  // Worker 1's thread dies; the pool starts another on its port a second later.
  const slot = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[1]!;
  await slot.worker.terminate();
  await waitFor(
    'the restarted worker answers, refusing the key',
    async () => ((await statusAt(first + 1).catch(() => undefined)) === 401 ? true : undefined),
    10_000,
  );
  expect((await metrics.registry.getSingleMetric('lmgate_worker_restarts_total')?.get())?.values[0]?.value).toBe(1);
});
