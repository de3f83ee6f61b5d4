// Where the gate's memory goes: one gate of a bench profile (governed by default) behind the real
// Envoy and the mock, started as the benches start it (compiled, README's NODE_OPTIONS), its
// resident set read idle, after an open-loop load and after a closed loop. Prints per phase the
// process's VmRSS and VmHWM (peak, the figure `npm run bench:peers` compares), anonymous and
// file-backed RSS, the main thread's V8 heap (used, total, new and old space), external memory
// and array buffers, and gate CPU per request, so a memory lever's cost in CPU shows beside it.
// Short by design: RSS is not a latency figure, so it can be read on a shared machine.
//
//   npm run bench:rss -- [--profile governed] [--rate 300] [--duration 15] [--workers 32]
//                        [--closed 10 (0: none)] [--node-options='<flags>'] [--node-args='<flags>']
//                        [--env NAME=VALUE] [--source]
//
// --node-options replaces the bench's NODE_OPTIONS (GATE_NODE_OPTIONS) for this gate; --source
// runs extproc/main.ts with Node's type stripping instead of the compiled gate; --node-args puts
// flags on node's command line (V8 flags NODE_OPTIONS does not take); --env adds to its environment.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { ROOT } from '../test/harness/envoy.ts';
import { waitFor } from '../test/harness/ports.ts';
import { chatTarget, errorsOf } from './lib/common.ts';
import { type BenchGate, GATE_NODE_OPTIONS, startBenchEnvoy, startGate, startMock } from './lib/topology.ts';
import { attack, ensureVegeta } from './lib/vegeta.ts';

const PROBE = new URL('./lib/rss-probe.js', import.meta.url).pathname;

interface Probe {
  memory: NodeJS.MemoryUsage;
  heap: { total: number; used: number; malloced: number; peakMalloced: number };
  spaces: Record<string, number>;
  /** Counts and milliseconds since start; maxMs: the longest pause since the last reading. */
  gc: Record<'minor' | 'major' | 'other', { count: number; ms: number; maxMs: number }>;
}

interface Phase {
  name: string;
  requests: number;
  errors: Record<string, number>;
  rateRps: number;
  cpuMsPerRequest: number;
  status: Record<string, number>;
  probe: Probe;
  /** The phase's own garbage collections (the probe counts since start). */
  gc: Probe['gc'];
}

/** VmRSS, VmHWM, RssAnon, RssFile of a process, in KiB. */
async function procStatus(pid: number): Promise<Record<string, number>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const out: Record<string, number> = {};
  for (const k of ['VmRSS', 'VmHWM', 'RssAnon', 'RssFile'])
    out[k] = Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return out;
}

/** Asks the gate's probe for its figures and waits for the line it appends. */
async function probe(gate: BenchGate, file: string): Promise<Probe> {
  const before = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  process.kill(gate.pid, 'SIGUSR2');
  return waitFor('rss probe', async () => {
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return lines.length > before ? (JSON.parse(lines[lines.length - 1]!) as Probe) : undefined;
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'governed' },
      rate: { type: 'string', default: '300' },
      duration: { type: 'string', default: '15' },
      workers: { type: 'string', default: '32' },
      closed: { type: 'string', default: '10' },
      settle: { type: 'string', default: '2' },
      'node-options': { type: 'string' },
      source: { type: 'boolean', default: false },
      env: { type: 'string', multiple: true, default: [] },
      'node-args': { type: 'string', default: '' },
    },
  });
  const log = (m: string) => process.stderr.write(`[bench:rss] ${m}\n`);
  const key = generateApiKey('bench');
  const work = await mkdtemp(join(tmpdir(), 'lm-gate-bench-rss-'));
  const probeFile = join(work, 'probe.jsonl');
  const nodeOptions = values['node-options'] ?? GATE_NODE_OPTIONS;
  // --env NAME=VALUE: more of the gate's environment (MALLOC_ARENA_MAX=2, UV_THREADPOOL_SIZE=2…).
  const extraEnv: Record<string, string> = {};
  for (const e of values.env) {
    const eq = e.indexOf('=');
    if (eq < 1) throw new Error(`--env ${JSON.stringify(e)}: NAME=VALUE`);
    extraEnv[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const vegeta = await ensureVegeta(log);
    const mock = await startMock();
    stops.push(() => mock.proc.stop());
    const gate = await startGate(
      'rss',
      values.profile,
      { ...extraEnv, LMG_BENCH_KEY_SHA256: hashApiKey(key), LMG_RSS_PROBE: probeFile, NODE_OPTIONS: nodeOptions },
      {
        // V8 flags NODE_OPTIONS refuses (--optimize-for-size…) go on the command line.
        nodeArgs: [...values['node-args'].split(' ').filter(Boolean), '--import', PROBE],
        ...(values.source ? { entry: join(ROOT, 'extproc', 'main.ts') } : {}),
      },
    );
    stops.push(() => gate.stop());
    const envoy = await startBenchEnvoy([{ name: 'gated', gate }], mock.port, 2);
    stops.unshift(() => envoy.stop());
    const target = chatTarget(envoy, 'gated', key);
    const phases: Phase[] = [];
    const measure = async (
      name: string,
      run: () => Promise<{ requests: number; errors: Record<string, number>; elapsedS: number }>,
    ) => {
      const cpu0 = await gate.cpuSeconds();
      const r = await run();
      const cpu = (await gate.cpuSeconds()) - cpu0;
      const probed = await probe(gate, probeFile);
      const prev = phases.at(-1)?.probe.gc;
      const gc = structuredClone(probed.gc);
      for (const k of ['minor', 'major', 'other'] as const) {
        gc[k].count -= prev?.[k].count ?? 0;
        gc[k].ms -= prev?.[k].ms ?? 0;
      }
      phases.push({
        name,
        requests: r.requests,
        errors: r.errors,
        rateRps: r.elapsedS > 0 ? r.requests / r.elapsedS : 0,
        cpuMsPerRequest: r.requests > 0 ? (cpu * 1000) / r.requests : 0,
        status: await procStatus(gate.pid),
        probe: probed,
        gc,
      });
    };
    await measure('idle', async () => {
      // What a started gate holds before its first request (Envoy's health checks only).
      await new Promise((r) => setTimeout(r, Number(values.settle) * 1000));
      return { requests: 0, errors: {}, elapsedS: 0 };
    });
    const sanity = await fetch(target.url, { method: 'POST', headers: target.headers, body: target.body });
    if (sanity.status !== 200) throw new Error(`sanity: answered ${sanity.status}: ${await sanity.text()}`);
    log(`open loop: ${values.rate} req/s for ${values.duration}s`);
    await measure(`open loop ${values.rate} req/s`, async () => {
      const r = await attack(
        vegeta,
        { targets: [target], rate: Number(values.rate), durationS: Number(values.duration) },
        work,
      );
      const s = r.byTarget.get('gated')!.samples;
      return { requests: s.length, errors: errorsOf(s), elapsedS: r.elapsedS };
    });
    // --closed 0: no closed loop (vegeta reads a duration of 0 as "until stopped").
    const closedWorkers = Number(values.closed) > 0 ? values.workers.split(',').map(Number) : [];
    for (const w of closedWorkers) {
      log(`closed loop: ${w} workers for ${values.closed}s`);
      await measure(`closed loop ${w} workers`, async () => {
        const r = await attack(
          vegeta,
          { targets: [target], rate: 0, workers: w, durationS: Number(values.closed) },
          work,
        );
        const s = r.byTarget.get('gated')!.samples;
        return { requests: s.length, errors: errorsOf(s), elapsedS: r.elapsedS };
      });
    }
    const mib = (kib: number) => (kib / 1024).toFixed(1);
    const bm = (b: number | undefined) => ((b ?? Number.NaN) / 2 ** 20).toFixed(1);
    console.log(
      [
        `${values.profile}, ${values.source ? 'TypeScript sources (type stripping)' : 'compiled'}, NODE_OPTIONS=${JSON.stringify(nodeOptions)}${values['node-args'] ? ` node ${values['node-args']}` : ''}${values.env.map((e) => ` ${e}`).join('')}; MiB (heap figures: the main thread's)`,
        '',
        '| after | req/s | CPU ms/req | VmRSS | VmHWM | anon | file | heap used | heap total | new space | old space | code | external | array buffers | malloced | GC minor n/ms/max | GC major n/ms/max | GC ms/req | errors |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
        ...phases.map((p) => {
          const s = p.status;
          const m = p.probe.memory;
          return `| ${p.name} | ${p.rateRps.toFixed(0)} | ${p.cpuMsPerRequest.toFixed(3)} | ${mib(s.VmRSS!)} | ${mib(s.VmHWM!)} | ${mib(s.RssAnon!)} | ${mib(s.RssFile!)} | ${bm(m.heapUsed)} | ${bm(m.heapTotal)} | ${bm(p.probe.spaces.new_space)} | ${bm(p.probe.spaces.old_space)} | ${bm(p.probe.spaces.code_space)} | ${bm(m.external)} | ${bm(m.arrayBuffers)} | ${bm(p.probe.heap.malloced)} | ${p.gc.minor.count}/${p.gc.minor.ms.toFixed(0)}/${p.gc.minor.maxMs.toFixed(1)} | ${p.gc.major.count + p.gc.other.count}/${(p.gc.major.ms + p.gc.other.ms).toFixed(0)}/${Math.max(p.gc.major.maxMs, p.gc.other.maxMs).toFixed(1)} | ${p.requests > 0 ? ((p.gc.minor.ms + p.gc.major.ms + p.gc.other.ms) / p.requests).toFixed(4) : '-'} | ${JSON.stringify(p.errors)} |`;
        }),
      ].join('\n'),
    );
  } finally {
    for (const s of stops) await s().catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

await main();
