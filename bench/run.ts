import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { ROOT } from '../test/harness/envoy.ts';
import { renderChart } from './lib/chart.ts';
import {
  CHAT,
  chatTarget,
  commandLine,
  DLP_CHAT,
  DLP_REPLY,
  envoyStat,
  errorsOf,
  gitCommit,
  latencies,
  roundedPercentiles,
  runEnvironment,
  STREAM_CHAT,
} from './lib/common.ts';
import { type CpuProfile, summarize } from './lib/cpu-profile.ts';
import { startBenchIssuer } from './lib/jwt-issuer.ts';
import { renderMarkdown } from './lib/report.ts';
import { type BenchResult, benchResult, type OpenLoopRow, type SaturationRow } from './lib/result.ts';
import { difference, roundMs } from './lib/stats.ts';
import { type StreamTiming, streamChat } from './lib/stream-client.ts';
import { type StreamRoute, streamingRows } from './lib/streaming.ts';
import { type BenchEnvoy, type BenchGate, startBenchEnvoy, startGate, startMock } from './lib/topology.ts';
import { attack, ensureVegeta, type Sample, type Target } from './lib/vegeta.ts';
import { FULL, SMOKE } from './plan.ts';

const { values } = parseArgs({ options: { smoke: { type: 'boolean' }, out: { type: 'string' } } });
const plan = values.smoke ? SMOKE : FULL;
const outDir = values.out ?? join(ROOT, 'bench', 'results');
const started = new Date();
const t0 = performance.now();
const log = (m: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);

const GATED = ['passthrough', 'governed', 'governed_jwt'] as const;
type Gated = (typeof GATED)[number];

const key = generateApiKey('bench');
const issuer = await startBenchIssuer();
const token = await issuer.token();
const gateEnv = {
  LMG_BENCH_KEY_SHA256: hashApiKey(key),
  LMG_JWT_ISSUER: issuer.issuer,
  LMG_JWT_JWKS_URI: issuer.jwksUri,
};
/** The credential a route's caller presents: a JWT for governed_jwt, the API key elsewhere. */
const credentialFor = (route: string): string => (route === 'governed_jwt' ? token : key);
const work = await mkdtemp(join(tmpdir(), 'lm-gate-bench-'));
const stops: (() => Promise<unknown>)[] = [() => issuer.close()];

try {
  const vegeta = await ensureVegeta(log);
  log(`plan ${plan.kind}; starting mock, gates, envoy`);
  const mock = await startMock();
  stops.push(() => mock.proc.stop());
  const gates: Record<Gated, BenchGate> = {} as Record<Gated, BenchGate>;
  for (const g of GATED) {
    gates[g] = await startGate(g, g, gateEnv);
    stops.push(() => gates[g].stop());
  }
  // The alternative to reading streams in the gate's own stream: an enforcing gate that never
  // reads a response, and a metering gate on a second filter in observability_mode.
  const enforce = await startGate('enforce', 'enforce', gateEnv);
  stops.push(() => enforce.stop());
  const meter = await startGate('meter', 'meter', gateEnv);
  stops.push(() => meter.stop());
  const dlp = await startGate('dlp', 'dlp', gateEnv);
  stops.push(() => dlp.stop());
  const profDir = join(work, 'cpu-profile');
  const profiled =
    plan.profileS > 0 ? await startGate('profiled', 'governed', gateEnv, { cpuProfileDir: profDir }) : undefined;
  if (profiled) stops.push(() => profiled.stop());

  const envoy = await startBenchEnvoy(
    [
      { name: 'direct' },
      { name: 'passthrough', gate: gates.passthrough },
      { name: 'governed', gate: gates.governed },
      { name: 'governed_jwt', gate: gates.governed_jwt },
      { name: 'observed', gate: enforce, observer: meter },
      { name: 'dlp', gate: dlp },
      ...(profiled ? [{ name: 'governed_profiled', gate: profiled }] : []),
    ],
    mock.port,
    plan.envoyConcurrency,
  );
  stops.unshift(() => envoy.stop());
  await sanityCheck(envoy);

  const target = (route: string): Target => chatTarget(envoy, route, credentialFor(route));
  const jwksBefore = await gates.governed_jwt.metricValues('lmgate_jwks_fetches_total');

  log(`warm-up ${plan.warmupS}s`);
  await attack(
    vegeta,
    // The dlp gate warms up on the prompt it is measured with (its detectors' code paths).
    {
      targets: [...['direct', ...GATED].map(target), chatTarget(envoy, 'dlp', key, DLP_CHAT)],
      rate: 300,
      durationS: plan.warmupS,
    },
    join(work, 'warmup'),
  );

  // ---- open loop: each gated profile against the direct route, request by request ----
  const openLoop: OpenLoopRow[] = [];
  for (const rate of plan.rates) {
    const acc = new Map<Gated, { direct: Sample[]; gated: Sample[]; cpu: number }>();
    for (let round = 0; round < plan.rounds; round++) {
      const order = round % 2 === 0 ? GATED : [...GATED].reverse();
      for (const p of order) {
        log(`open loop ${rate} req/s, ${p} vs direct, round ${round + 1}/${plan.rounds}`);
        const cpu0 = await gates[p].cpuSeconds();
        const r = await attack(
          vegeta,
          { targets: [target('direct'), target(p)], rate: rate * 2, durationS: plan.sliceS },
          join(work, 'open'),
        );
        const cpu = (await gates[p].cpuSeconds()) - cpu0;
        const a = acc.get(p) ?? { direct: [], gated: [], cpu: 0 };
        a.direct.push(...r.byTarget.get('direct')!.samples);
        a.gated.push(...r.byTarget.get(p)!.samples);
        a.cpu += cpu;
        acc.set(p, a);
      }
    }
    for (const p of GATED) {
      const a = acc.get(p)!;
      const direct = latencies(a.direct);
      const gated = latencies(a.gated);
      openLoop.push({
        profile: p,
        rateRps: rate,
        requests: { direct: a.direct.length, gated: a.gated.length },
        errors: { direct: errorsOf(a.direct), gated: errorsOf(a.gated) },
        directMs: roundedPercentiles(direct),
        gatedMs: roundedPercentiles(gated),
        addedMs: roundedPercentiles(difference(gated, direct)),
        gateCpuS: roundMs(a.cpu),
        gateCpuMsPerRequest: roundMs((a.cpu * 1000) / Math.max(1, a.gated.length)),
      });
    }
  }

  // ---- open loop, DLP: the 16 KB prompt through the dlp gate and through the governed gate (the
  // same stages without DLP), against the same prompt direct: DLP's own cost is the difference.
  for (const rate of plan.rates) {
    const routes = [
      ['governed_16k', 'governed'],
      ['dlp', 'dlp'],
    ] as const;
    const samples = new Map<string, Sample[]>([['direct', []], ...routes.map(([n]) => [n, []] as [string, Sample[]])]);
    const cpu = new Map<string, number>(routes.map(([n]) => [n, 0]));
    const gateOf = (route: string) => (route === 'dlp' ? dlp : gates.governed);
    const targets = [
      chatTarget(envoy, 'direct', key, DLP_CHAT),
      ...routes.map(([n, route]) => ({ ...chatTarget(envoy, route, key, DLP_CHAT), name: n })),
    ];
    if (rate === plan.rates[0]) {
      // The dlp gate has served nothing since the warm-up (the phases above took minutes), and
      // the governed gate has not had this prompt since either. Each is warmed on it again, as
      // every gate of the phases above was just before its first slice: what is measured is a
      // gate at its steady state. What a quiet spell costs is a figure of its own (README
      // "In production", `npm run bench:ab -- --idle`).
      log(`warm-up ${plan.phaseWarmupS}s: governed and dlp on the 16 KB prompt`);
      await attack(vegeta, { targets, rate: rate * 3, durationS: plan.phaseWarmupS }, join(work, 'warmup'));
    }
    for (let round = 0; round < plan.rounds; round++) {
      log(`open loop ${rate} req/s, governed and dlp (16 KB prompt) vs direct, round ${round + 1}/${plan.rounds}`);
      const cpu0 = new Map<string, number>();
      for (const [n, route] of routes) cpu0.set(n, await gateOf(route).cpuSeconds());
      const r = await attack(vegeta, { targets, rate: rate * 3, durationS: plan.sliceS }, join(work, 'open'));
      for (const [n, route] of routes) cpu.set(n, cpu.get(n)! + (await gateOf(route).cpuSeconds()) - cpu0.get(n)!);
      for (const [n, list] of samples) list.push(...r.byTarget.get(n)!.samples);
    }
    const d = latencies(samples.get('direct')!);
    for (const [n] of routes) {
      const gated = samples.get(n)!;
      const g = latencies(gated);
      openLoop.push({
        profile: n,
        rateRps: rate,
        requests: { direct: samples.get('direct')!.length, gated: gated.length },
        errors: { direct: errorsOf(samples.get('direct')!), gated: errorsOf(gated) },
        directMs: roundedPercentiles(d),
        gatedMs: roundedPercentiles(g),
        addedMs: roundedPercentiles(difference(g, d)),
        // The governed gate also serves other slices; its CPU here is this slice's.
        gateCpuS: roundMs(cpu.get(n)!),
        gateCpuMsPerRequest: roundMs((cpu.get(n)! * 1000) / Math.max(1, gated.length)),
      });
    }
  }

  // ---- closed loop: throughput at a fixed number of workers, each route alone ----
  const saturation: SaturationRow[] = [];
  for (const workers of plan.workers) {
    for (const route of ['direct', ...GATED]) {
      log(`closed loop ${workers} workers, ${route}`);
      const r = await attack(
        vegeta,
        { targets: [target(route)], rate: 0, workers, durationS: plan.saturationS },
        join(work, 'closed'),
      );
      const s = r.byTarget.get(route)!.samples;
      const ok = s.filter((x) => x.ok);
      const p = latencies(ok);
      saturation.push({
        route,
        workers,
        rps: Math.round(ok.length / Math.max(r.elapsedS, 1e-9)),
        p50Ms: roundMs(p.p50),
        p99Ms: roundMs(p.p99),
        errors: s.length - ok.length,
      });
    }
  }
  const saturationMaxRps: Record<string, number> = {};
  for (const s of saturation) saturationMaxRps[s.route] = Math.max(saturationMaxRps[s.route] ?? 0, s.rps);

  // ---- streaming: every route at once, a few streams each, timed per token ----
  const streamRoutes: StreamRoute[] = [
    { route: 'direct', description: 'Envoy alone', gates: [] },
    { route: 'passthrough', description: 'gate, no stages: response body not read', gates: [gates.passthrough] },
    {
      route: 'governed',
      description: 'gate, all stages: response read STREAMED, one gRPC round trip per chunk',
      gates: [gates.governed],
    },
    {
      route: 'observed',
      description:
        'gate with identity, API shape and policy (profile enforce); a second ext_proc filter in observability_mode sends the request and the STREAMED response to a metering gate (profile meter) without waiting',
      gates: [enforce, meter],
    },
    {
      route: 'dlp',
      description:
        'gate, all stages and DLP on both sides: every delta scanned and released through the hold-back; the reply carries e-mails and card numbers to redact',
      gates: [dlp],
      mayJoinChunks: true,
    },
  ];
  const timings = new Map<string, StreamTiming[]>(streamRoutes.map((r) => [r.route, []]));
  const headers = {
    authorization: `Bearer ${key}`,
    'x-mock-chunks': String(plan.chunks),
    'x-mock-chunk-delay-ms': String(plan.chunkDelayMs),
    'x-mock-timestamps': '1',
  };
  const cpuOf = async (gs: BenchGate[]) => {
    let sum = 0;
    for (const g of gs) sum += await g.cpuSeconds();
    return sum;
  };
  const streamCpu0 = new Map<string, number>();
  for (const r of streamRoutes) if (r.gates.length > 0) streamCpu0.set(r.route, await cpuOf(r.gates));
  for (let round = 0; round < plan.streamRounds; round++) {
    if (round % 5 === 0) log(`streaming round ${round + 1}/${plan.streamRounds}`);
    await Promise.all(
      streamRoutes.flatMap((r) =>
        Array.from({ length: plan.streamsPerRoute }, async () => {
          const h = r.route === 'dlp' ? { ...headers, 'x-mock-content': encodeURIComponent(DLP_REPLY) } : headers;
          const t = await streamChat(`${envoy.url(r.route)}/v1/chat/completions`, h, STREAM_CHAT);
          timings.get(r.route)!.push(t);
        }),
      ),
    );
  }
  const streamCpu = new Map<string, number>();
  for (const r of streamRoutes)
    if (r.gates.length > 0) streamCpu.set(r.route, (await cpuOf(r.gates)) - streamCpu0.get(r.route)!);
  const streaming = streamingRows(streamRoutes, timings, streamCpu, plan.chunks);

  // Before the profiled gate is stopped: its drain would show as GOAWAYs.
  const envoyCounters = await extProcCounters(envoy);

  // ---- CPU profile of a governed gate under open-loop load ----
  let cpuProfile: BenchResult['cpuProfile'];
  if (profiled) {
    log(`CPU profile: governed at ${plan.profileRate} req/s for ${plan.profileS}s`);
    await attack(
      vegeta,
      { targets: [target('governed_profiled')], rate: plan.profileRate, durationS: plan.profileS },
      join(work, 'prof'),
    );
    await profiled.stop();
    const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written in ${profDir}\n${profiled.proc.describe()}`);
    // The load window only (plus the drain on SIGTERM), not the gate's start-up.
    const summary = summarize(JSON.parse(await readFile(join(profDir, file), 'utf8')) as CpuProfile, {
      lastMs: plan.profileS * 1000 + 500,
    });
    cpuProfile = { route: 'governed', rateRps: plan.profileRate, durationS: plan.profileS, ...summary };
  }

  const gateRows = [];
  // Steady state never fetches a JWKS on the request path: after the startup fetch, the only
  // fetches are background refreshes (reason="refresh"), never reason="unknown_kid".
  const jwksAfter = await gates.governed_jwt.metricValues('lmgate_jwks_fetches_total');
  const jwks = {
    fetchesDuringRun: jwksDelta(jwksBefore, jwksAfter),
    fetchesTotal: jwksDelta({}, jwksAfter),
    served: issuer.jwksRequests,
  };
  for (const g of [gates.passthrough, gates.governed, gates.governed_jwt, enforce, meter, dlp]) {
    gateRows.push({
      name: g.name,
      profile: g.name,
      cpuS: roundMs(await g.cpuSeconds()),
      peakRssMiB: await g.peakRssMiB(),
      tokensMetered: await g.tokensMetered(),
    });
  }

  const result: BenchResult = benchResult.parse({
    schema: 'lm-gate-bench/1',
    kind: plan.kind,
    startedAt: started.toISOString(),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    command: commandLine('bench/run.ts', { dropArgs: Boolean(values.smoke) }),
    commit: gitCommit(),
    environment: runEnvironment(plan.envoyConcurrency),
    method: {
      request: `POST /v1/chat/completions, non-streaming, ${CHAT.length}-byte JSON body; the mock answers at once`,
      openLoop: `after a ${plan.warmupS} s warm-up of every route (V8 tiers the gate's code up meanwhile), vegeta at a fixed rate, round-robin over [direct, gated]: each route gets the rate shown; the 16 KB prompt's phase (governed_16k, dlp) after a ${plan.phaseWarmupS} s warm-up of its own on that prompt, its dlp gate having served nothing since the first`,
      rates: plan.rates,
      rounds: plan.rounds,
      sliceS: plan.sliceS,
      saturation: 'vegeta closed loop (-rate=0) with a fixed number of workers, each route alone',
      workers: plan.workers,
      saturationS: plan.saturationS,
      streaming: `${plan.streamRounds} rounds of ${plan.streamsPerRoute} concurrent streams on every route at once`,
      added: 'percentile through the gate minus the same percentile direct, in the same run',
    },
    openLoop,
    saturation,
    saturationMaxRps,
    streaming: { chunks: plan.chunks, chunkDelayMs: plan.chunkDelayMs, ...streaming },
    gates: gateRows,
    jwks,
    envoyCounters,
    skipped: [],
    ...(cpuProfile ? { cpuProfile } : {}),
  });

  await mkdir(outDir, { recursive: true });
  const base = join(outDir, plan.kind === 'full' ? 'latest' : 'smoke');
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${base}.md`, renderMarkdown(result));
  await writeFile(`${base}.svg`, renderChart(result));
  log(`wrote ${base}.json, .md, .svg`);
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}

/** Fetch counts by reason, after minus before (labels other than reason summed). */
function jwksDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [labels, v] of Object.entries(after)) {
    const reason = /reason="([^"]+)"/.exec(labels)?.[1] ?? 'unknown';
    out[reason] = (out[reason] ?? 0) + v - (before[labels] ?? 0);
  }
  return out;
}

async function sanityCheck(envoy: BenchEnvoy): Promise<void> {
  const post = (route: string, auth: boolean) =>
    fetch(`${envoy.url(route)}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(auth ? { authorization: `Bearer ${credentialFor(route)}` } : {}),
      },
      body: CHAT,
    });
  for (const route of envoy.routes.map((r) => r.name)) {
    const r = await post(route, true);
    if (r.status !== 200) throw new Error(`sanity: ${route} answered ${r.status}: ${await r.text()}`);
  }
  // The governed gate is really in the path: no key, no answer.
  const refused = await post('governed', false);
  if (refused.status !== 401) throw new Error(`sanity: governed without a key answered ${refused.status}`);
}

/** Envoy's own view of each gated route: its ext_proc failures and the gate connections it
 * lost. Non-zero here explains errors in the tables. */
async function extProcCounters(envoy: BenchEnvoy): Promise<Record<string, Record<string, number>>> {
  const text = await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats?usedonly`)).text();
  const out: Record<string, Record<string, number>> = {};
  const wanted = [
    'ext_proc.streams_started',
    'ext_proc.streams_failed',
    'ext_proc.message_timeouts',
    'ext_proc.server_half_closed',
    'ext_proc.spurious_msgs_received',
  ];
  for (const r of envoy.routes) {
    if (!r.gate || r.name === 'governed_profiled') continue;
    const counters: Record<string, number> = {};
    for (const w of wanted) counters[w.replace('ext_proc.', '')] = envoyStat(text, `http.${r.name}.${w}`);
    for (const g of [r.gate, r.observer]) {
      if (g) counters[`gate_goaway_${g.name}`] = envoyStat(text, `cluster.lm_gate_${g.name}.upstream_cx_close_notify`);
    }
    out[r.name] = counters;
  }
  return out;
}
