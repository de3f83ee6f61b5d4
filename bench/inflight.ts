// What one request keeps alive while it waits for the model server: one gate of a bench profile
// behind Envoy, warmed up, a heap snapshot idle, then N requests held upstream (the mock answers
// after --latency ms) and a second snapshot while they wait. Prints the live bytes per request in
// flight by kind of object (bench/lib/heap-snapshot.ts). Every scavenge while a request lives
// copies this state, and the second promotes it, so under load the GC's cost per request grows
// with it and with the concurrency (README, the in-flight state levers). Not a timed test.
//
//   npm run bench:inflight -- [--profile governed] [--requests 200] [--latency 6000] [--top 30]
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { CHAT, chatTarget } from './lib/common.ts';
import { type HeapSnapshot, heapKinds, perRequest } from './lib/heap-snapshot.ts';
import { startBenchEnvoy, startGate, startMock } from './lib/topology.ts';

async function main() {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'governed' },
      requests: { type: 'string', default: '200' },
      latency: { type: 'string', default: '6000' },
      top: { type: 'string', default: '30' },
    },
  });
  const n = Number(values.requests);
  const latencyMs = Number(values.latency);
  if (!(Number.isInteger(n) && n >= 1)) throw new Error('--requests: a whole number, 1 or more');
  if (!(latencyMs >= 5000))
    throw new Error('--latency: ms, at least 5000 (the snapshot is taken and read while they wait)');
  const log = (m: string) => process.stderr.write(`[bench:inflight] ${m}\n`);
  const key = generateApiKey('bench');
  const work = await mkdtemp(join(tmpdir(), 'lm-gate-bench-inflight-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const mock = await startMock();
    stops.push(() => mock.proc.stop());
    const gate = await startGate(
      'inflight',
      values.profile,
      { LMG_BENCH_KEY_SHA256: hashApiKey(key) },
      { nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${work}`] },
    );
    stops.push(() => gate.stop());
    const envoy = await startBenchEnvoy([{ name: 'gated', gate }], mock.port, 2);
    stops.unshift(() => envoy.stop());
    const target = chatTarget(envoy, 'gated', key, CHAT);
    const send = async (latency: number): Promise<number> => {
      const headers = { ...target.headers, 'x-mock-latency-ms': String(latency) };
      const res = await fetch(target.url, { method: 'POST', headers, body: CHAT });
      await res.arrayBuffer();
      return res.status;
    };
    log('warm-up: 1000 requests, 50 at a time');
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 50 }, () => send(0)));

    const snapshot = async (): Promise<HeapSnapshot> => {
      const before = new Set(await readdir(work));
      process.kill(gate.proc.pid!, 'SIGUSR2');
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        const file = (await readdir(work)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
        if (file === undefined) continue;
        // Written in pieces: read it once its size holds still.
        const path = join(work, file);
        const size = (await stat(path)).size;
        await new Promise((r) => setTimeout(r, 500));
        if ((await stat(path)).size !== size || size === 0) continue;
        const json = JSON.parse(await readFile(path, 'utf8')) as HeapSnapshot;
        await rm(path);
        return json;
      }
    };
    log('snapshot, idle');
    const idle = heapKinds(await snapshot());
    log(`${n} requests held upstream for ${latencyMs} ms`);
    let answered = 0;
    const flight = Array.from({ length: n }, () =>
      send(latencyMs).finally(() => {
        answered++;
      }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    log('snapshot, while they wait');
    const busy = heapKinds(await snapshot());
    // Read after the snapshot was written, so an upper bound: any answer by then may have been
    // before it, and the figure would not be per request in flight.
    const early = answered;
    const statuses = await Promise.all(flight);
    if (early > 0) throw new Error(`${early} requests were answered before the snapshot was read: raise --latency`);
    const failed = statuses.filter((s) => s !== 200).length;
    if (failed > 0) throw new Error(`${failed} of the ${n} requests in flight did not answer 200`);
    const r = perRequest(idle, busy, n, Number(values.top));
    console.log(
      [
        `${values.profile}, ${n} requests waiting upstream:`,
        `**${(r.bytes / 1024).toFixed(2)} KiB live per request in flight** (heap snapshots: ${(idle.totalBytes / 1024 / 1024).toFixed(1)} MiB idle, ${(busy.totalBytes / 1024 / 1024).toFixed(1)} MiB busy)`,
        '',
        '| kind (type:name) | bytes per request | objects per request |',
        '|---|---:|---:|',
        ...r.kinds.map((k) => `| ${k.kind.replaceAll('|', '\\|')} | ${k.bytes.toFixed(0)} | ${k.count.toFixed(2)} |`),
      ].join('\n'),
    );
  } finally {
    for (const s of stops) await s().catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

await main();
