// Where the gate allocates, per request: one gate of a bench profile behind Envoy, under an
// open-loop load, with V8's sampling heap profiler counting every allocation of the load window
// (objects already freed included). Prints bytes per request by package and the functions that
// allocate most. Not a timed test; the figure is an estimate (sampled), repeatable to a few %.
// With --cpu it runs V8's CPU profiler instead over the same window and prints where the busy
// time goes (self time by package and the hottest functions, bench/lib/cpu-profile.ts): the
// proportions hold even on a loaded machine, where latency figures do not.
//
//   npm run bench:alloc -- [--profile governed] [--rate 300 | --workers 64] [--duration 20] [--top 15] [--cpu]
//                          [--body chat|dlp|stream] [--chunks 50] [--gc] [--nvp] [--survivors]
//                          [--node-args='...'] [--gc-log F] [--audit none|interval|strict]
//
// --workers N loads the gate with a closed loop of N workers instead (vegeta -rate=0, as bench:peers'
// saturation rows): what the gate does at its bend, where the open-loop rate it reaches is not known
// in advance.
// --survivors counts only what outlived a scavenge (promoted: the old space's growth, which
// mark-compacts and their incremental marking steps then pay for).
// --node-args='--flag ...' adds V8/Node flags to the gate's command line (experiments).
// --audit MODE sets the profile's audit.durability (strict: each last answer waits for its fsync).
// --gc-log FILE writes the gate's stdout of the load window (the raw --trace-gc lines) to FILE.
// --gc runs the gate with --trace-gc instead and prints the collections of the load window by
// kind (scavenge, mark-compact, ...): count, pause total, mean and max, and why they started.
// --nvp runs it with --trace-gc-nvp instead: the same collections with the bytes each kind
// promoted per request (what fills the old generation) and its pause by phase, ms per collection
// (bench/lib/gc-trace.ts summarizeGcNvp).
//
// --body dlp sends the dlp profile's 16 KB prompt (16 e-mail addresses and card numbers)
// instead of the small chat body: with --profile dlp against --profile governed_16k it shows
// where DLP's cost per request goes.
// --body stream sends the streamed chat request (stream: true) and has the mock answer --chunks
// SSE chunks back to back: the per-request figures then carry the response-body messages, and
// each is also printed per chunk (what the streaming rows of bench:peers compare).
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DURABILITY, type Durability } from '../extproc/audit/config.ts';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { type HeapProfile, summarizeAlloc } from './lib/alloc-profile.ts';
import { CHAT, chatTarget, DLP_CHAT, errorsOf, STREAM_CHAT } from './lib/common.ts';
import { type CpuProfile, summarize } from './lib/cpu-profile.ts';
import { summarizeGcNvp, summarizeGcTrace } from './lib/gc-trace.ts';
import { startBenchEnvoy, startGate, startMock } from './lib/topology.ts';
import { attack, ensureVegeta } from './lib/vegeta.ts';

const SAMPLER = new URL('./lib/alloc-sampler.ts', import.meta.url).pathname;

async function main() {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'governed' },
      rate: { type: 'string', default: '300' },
      workers: { type: 'string' },
      duration: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '5' },
      top: { type: 'string', default: '15' },
      cpu: { type: 'boolean', default: false },
      body: { type: 'string', default: 'chat' },
      chunks: { type: 'string', default: '50' },
      gc: { type: 'boolean', default: false },
      nvp: { type: 'boolean', default: false },
      audit: { type: 'string' },
      survivors: { type: 'boolean', default: false },
      'node-args': { type: 'string', default: '' },
      'gc-log': { type: 'string' },
    },
  });
  const log = (m: string) => process.stderr.write(`[bench:alloc] ${m}\n`);
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1))
    throw new Error('--workers: a whole number of closed-loop workers, 1 or more');
  // The load: an open-loop rate, or (--workers) a closed loop, rate 0.
  const load = workers === undefined ? { rate: Number(values.rate) } : { rate: 0, workers };
  const loadName = workers === undefined ? `${values.rate} req/s` : `a closed loop of ${workers} workers`;
  const chunks = Number(values.chunks);
  if (!Number.isInteger(chunks) || chunks < 1) throw new Error('--chunks: a whole number of SSE chunks, 1 or more');
  // Per chunk, for a streamed body: the request's figure over its response-body messages.
  const perChunk = (perRequest: number, unit: string, digits: number) =>
    values.body === 'stream' ? ` (${(perRequest / chunks).toFixed(digits)} ${unit} per chunk of ${chunks})` : '';
  const key = generateApiKey('bench');
  const work = await mkdtemp(join(tmpdir(), 'lm-gate-bench-alloc-'));
  const profileFile = join(work, 'alloc.heapprofile');
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const vegeta = await ensureVegeta(log);
    const mock = await startMock();
    stops.push(() => mock.proc.stop());
    const cpuDir = join(work, 'cpu');
    const gate = await startGate(
      'alloc',
      values.profile,
      {
        LMG_BENCH_KEY_SHA256: hashApiKey(key),
        LMG_ALLOC_PROFILE: profileFile,
        ...(values.survivors ? { LMG_ALLOC_SURVIVORS: '1' } : {}),
      },
      {
        ...(values.cpu ? { cpuProfileDir: cpuDir } : {}),
        ...(values.audit !== undefined ? { auditDurability: auditMode(values.audit) } : {}),
        nodeArgs: [
          ...(values.nvp ? ['--trace-gc-nvp'] : values.gc ? ['--trace-gc'] : values.cpu ? [] : ['--import', SAMPLER]),
          ...values['node-args'].split(' ').filter((a) => a !== ''),
        ],
      },
    );
    stops.push(() => gate.stop());
    const envoy = await startBenchEnvoy([{ name: 'gated', gate }], mock.port, 2);
    stops.unshift(() => envoy.stop());
    if (values.body !== 'chat' && values.body !== 'dlp' && values.body !== 'stream')
      throw new Error('--body: chat, dlp or stream');
    const body = values.body === 'dlp' ? DLP_CHAT : values.body === 'stream' ? Buffer.from(STREAM_CHAT) : CHAT;
    const target = chatTarget(envoy, 'gated', key, body);
    if (values.body === 'stream') Object.assign(target.headers, { 'x-mock-chunks': String(chunks) });
    const sanity = await fetch(target.url, { method: 'POST', headers: target.headers, body });
    if (sanity.status !== 200) throw new Error(`sanity: answered ${sanity.status}: ${await sanity.text()}`);
    log(`warm-up ${values.warmup}s`);
    await attack(vegeta, { targets: [target], ...load, durationS: Number(values.warmup) }, work);
    if (!values.cpu && !values.gc && !values.nvp) process.kill(gate.proc.pid!, 'SIGUSR2');
    const gcFrom = gate.proc.stdout.length;
    log(`sampling: ${values.profile} at ${loadName} for ${values.duration}s`);
    const r = await attack(vegeta, { targets: [target], ...load, durationS: Number(values.duration) }, work);
    const samples = r.byTarget.get('gated')!.samples;
    const errors = errorsOf(samples);
    const gcLog = gate.proc.stdout.slice(gcFrom);
    await gate.stop();
    // The raw trace of the load window, for what the summary leaves out (--trace-gc-nvp fields).
    if (values['gc-log'] !== undefined) await writeFile(values['gc-log'], gcLog);
    if (values.nvp) {
      const kinds = summarizeGcNvp(gcLog);
      const n = samples.length;
      console.log(
        [
          `${values.profile}, ${n} requests at ${loadName} (errors: ${JSON.stringify(errors)}), --trace-gc-nvp, the load window:`,
          '',
          '| collection | count | pause ms, total | mean | max | promoted KiB per request |',
          '|---|---:|---:|---:|---:|---:|',
          ...kinds.map(
            (k) =>
              `| ${k.kind} | ${k.count} | ${k.totalMs.toFixed(1)} | ${(k.totalMs / k.count).toFixed(2)} | ${k.maxMs.toFixed(2)} | ${(k.promotedBytes / 1024 / n).toFixed(2)} |`,
          ),
          ...kinds.flatMap((k) => [
            '',
            `${k.kind}: the pause by phase, ms per collection (sub-phases are part of their phase)`,
            ...k.phases.slice(0, Number(values.top)).map(([name, ms]) => `- ${name}: ${ms.toFixed(2)}`),
          ]),
        ].join('\n'),
      );
      return;
    }
    if (values.gc) {
      const gc = summarizeGcTrace(gcLog);
      console.log(
        [
          `${values.profile}, ${samples.length} requests at ${loadName} (errors: ${JSON.stringify(errors)}):`,
          `**${(gc.totalMs / samples.length).toFixed(3)} ms of GC pause per request** (--trace-gc, the load window)`,
          '',
          '| collection | count | pause ms, total | mean | max |',
          '|---|---:|---:|---:|---:|',
          ...gc.kinds.map(
            (k) =>
              `| ${k.kind} | ${k.count} | ${k.totalMs.toFixed(1)} | ${k.meanMs.toFixed(2)} | ${k.maxMs.toFixed(2)} |`,
          ),
          '',
          'reasons (count):',
          ...gc.reasons.map(([r, n]) => `- ${r}: ${n}`),
          ...(gc.unparsed.length > 0
            ? ['', `unparsed trace lines (${gc.unparsed.length}):`, ...gc.unparsed.slice(0, 5)]
            : []),
        ].join('\n'),
      );
      return;
    }
    if (values.cpu) {
      const file = (await readdir(cpuDir)).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile written in ${cpuDir}`);
      // The load window (plus the drain on SIGTERM), not the start-up and warm-up.
      const cpu = summarize(JSON.parse(await readFile(join(cpuDir, file), 'utf8')) as CpuProfile, {
        top: Number(values.top),
        lastMs: Number(values.duration) * 1000 + 500,
      });
      console.log(
        [
          `${values.profile}, ${samples.length} requests at ${loadName} (errors: ${JSON.stringify(errors)}):`,
          `**${(cpu.sampledMs / samples.length).toFixed(3)} ms busy per request** (sampled, idle excluded)${perChunk((cpu.sampledMs / samples.length) * 1000, 'µs', 1)}`,
          '',
          '| package | self % |',
          '|---|---:|',
          ...cpu.byPackage.slice(0, 25).map((p) => `| ${p.name} | ${p.selfPct} |`),
          '',
          '| function | where | self % | called from |',
          '|---|---|---:|---|',
          ...cpu.topFunctions.map((f) => `| ${f.name} | ${f.location} | ${f.selfPct} | ${f.calledFrom} |`),
        ].join('\n'),
      );
      return;
    }
    const summary = summarizeAlloc(
      JSON.parse(await readFile(profileFile, 'utf8')) as HeapProfile,
      samples.length,
      Number(values.top),
    );
    const kb = (b: number) => (b / 1024).toFixed(1);
    const out = [
      `${values.profile}, ${samples.length} requests at ${loadName} (errors: ${JSON.stringify(errors)}):`,
      values.survivors
        ? `**${kb(summary.bytesPerRequest)} KiB per request outlived a scavenge** (sampled; promoted to old space, or still young at exit)`
        : `**${kb(summary.bytesPerRequest)} KiB allocated per request** (sampled; freed objects included)${perChunk(summary.bytesPerRequest / 1024, 'KiB', 2)}`,
      '',
      '| package | KiB/req | % |',
      '|---|---:|---:|',
      ...summary.byPackage.slice(0, 12).map((p) => `| ${p.name} | ${kb(p.bytesPerRequest)} | ${p.pct} |`),
      '',
      '| function | where | KiB/req | % | called from |',
      '|---|---|---:|---:|---|',
      ...summary.topFunctions.map(
        (f) => `| ${f.name} | ${f.location} | ${kb(f.bytesPerRequest)} | ${f.pct} | ${f.calledFrom} |`,
      ),
    ];
    console.log(out.join('\n'));
  } finally {
    for (const s of stops) await s().catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

/** --audit: the audit sink's durability for the profile (audit.durability). */
function auditMode(v: string): Durability {
  if ((DURABILITY as readonly string[]).includes(v)) return v as Durability;
  throw new Error(`--audit: ${DURABILITY.join(', ')}`);
}

await main();
