import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { ROOT } from '../test/harness/envoy.ts';
import { AI_GATEWAY_MODULE, type BenchAiGateway, ensureAiGateway, startAiGateway } from './lib/ai-gateway.ts';
import { AIGW_COST_KEYS, aiGatewayFilterConfig } from './lib/ai-gateway-envoy.ts';
import {
  CHAT,
  chatTarget,
  commandLine,
  envoyStat,
  errorsOf,
  gitCommit,
  latencies,
  roundedPercentiles,
  runEnvironment,
  STREAM_CHAT,
} from './lib/common.ts';
import { renderPeersChart } from './lib/peers-chart.ts';
import { renderPeersMarkdown } from './lib/peers-report.ts';
import {
  PEERS,
  type Peer,
  type PeersOpenLoopRow,
  type PeersResult,
  type PeersSaturationRow,
  peerRatio,
  peersResult,
  type VerificationRow,
} from './lib/peers-result.ts';
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
const log = (m: string) =>
  process.stderr.write(`[bench:peers ${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);

const ROUTES = ['direct', ...PEERS] as const;
type RouteName = (typeof ROUTES)[number];
const DESCRIPTION: Record<RouteName, string> = {
  direct: 'Envoy alone: no ext_proc filter',
  governed:
    'LM Gate, profile governed: API-key identity, API-shape check, per-key policy, token metering, audit record; one ext_proc stream per request, response read BUFFERED (JSON) or STREAMED (SSE) by mode override',
  ai_gateway:
    'Envoy AI Gateway extproc, token metering on (route-scoped llmRequestCosts: input, output, total tokens into dynamic metadata): a router-level ext_proc filter (request and response) and an upstream-level one (request headers: backend selection and translation), two ext_proc streams per request; no client authentication or audit record in this configuration',
};

const key = generateApiKey('bench');
const gateEnv = { LMG_BENCH_KEY_SHA256: hashApiKey(key) };
const work = await mkdtemp(join(tmpdir(), 'lm-gate-bench-peers-'));
const stops: (() => Promise<unknown>)[] = [];

try {
  const vegeta = await ensureVegeta(log);
  const build = await ensureAiGateway(log);
  log(
    `AI Gateway ${build.version} extproc: ${build.cached ? 'cached build' : 'built'}${build.buildS === null ? '' : ` (${build.buildS} s)`}`,
  );
  log(`plan ${plan.kind}; starting mock, LM Gate, AI Gateway, envoy`);
  const mock = await startMock();
  stops.push(() => mock.proc.stop());
  const governed = await startGate('governed', 'governed', gateEnv);
  stops.push(() => governed.stop());
  const aiGateway = await startAiGateway(build, work);
  stops.push(() => aiGateway.stop());
  const verifyLog = join(work, 'verify-access.log');
  const envoy = await startBenchEnvoy(
    [
      { name: 'direct' },
      { name: 'governed', gate: governed },
      { name: 'ai_gateway', aiGateway },
      // Verification listeners: the same filters, plus an access log of the dynamic metadata.
      { name: 'governed_verify', gate: governed, accessLog: verifyLog },
      { name: 'ai_gateway_verify', aiGateway, accessLog: verifyLog },
    ],
    mock.port,
    plan.envoyConcurrency,
  );
  stops.unshift(() => envoy.stop());
  const verification = await verify(envoy, verifyLog);
  for (const v of verification)
    log(`verified ${v.route} ${v.request}: HTTP ${v.status}, usage ${JSON.stringify(v.usage)}, metered ${v.metered}`);
  const unmetered = verification.filter((v) => !v.metered);
  if (unmetered.length > 0)
    throw new Error(
      `not metered: ${unmetered.map((v) => `${v.route} ${v.request} ${JSON.stringify(v.metadata)}`).join('; ')}`,
    );

  const procOf: Record<Peer, BenchGate | BenchAiGateway> = { governed, ai_gateway: aiGateway };
  const cpuNow = async () => ({
    governed: await governed.cpuSeconds(),
    ai_gateway: await aiGateway.cpuSeconds(),
  });
  const target = (route: RouteName): Target => chatTarget(envoy, route, key);

  log(`warm-up ${plan.warmupS}s`);
  await attack(vegeta, { targets: ROUTES.map(target), rate: 300, durationS: plan.warmupS }, join(work, 'warmup'));

  // ---- open loop: the three routes round-robin, request by request ----
  const openLoop: PeersOpenLoopRow[] = [];
  for (const rate of plan.rates) {
    const samples = new Map<RouteName, Sample[]>(ROUTES.map((r) => [r, []]));
    const cpu: Record<Peer, number> = { governed: 0, ai_gateway: 0 };
    for (let round = 0; round < plan.rounds; round++) {
      // Rotate which route leads each tick of the round robin.
      const order = ROUTES.map((_, i) => ROUTES[(i + round) % ROUTES.length]!);
      log(`open loop ${rate} req/s per route, ${order.join(' / ')}, round ${round + 1}/${plan.rounds}`);
      const c0 = await cpuNow();
      const r = await attack(
        vegeta,
        { targets: order.map(target), rate: rate * ROUTES.length, durationS: plan.sliceS },
        join(work, 'open'),
      );
      const c1 = await cpuNow();
      for (const p of PEERS) cpu[p] += c1[p] - c0[p];
      for (const route of ROUTES) samples.get(route)!.push(...r.byTarget.get(route)!.samples);
    }
    const direct = samples.get('direct')!;
    const directMs = latencies(direct);
    const peer = (p: Peer) => {
      const s = samples.get(p)!;
      const m = latencies(s);
      return {
        requests: s.length,
        errors: errorsOf(s),
        ms: roundedPercentiles(m),
        addedMs: roundedPercentiles(difference(m, directMs)),
        cpuMsPerRequest: roundMs((cpu[p] * 1000) / Math.max(1, s.length)),
      };
    };
    const g = peer('governed');
    const a = peer('ai_gateway');
    openLoop.push({
      rateRps: rate,
      direct: { requests: direct.length, errors: errorsOf(direct), ms: roundedPercentiles(directMs) },
      governed: g,
      ai_gateway: a,
      ratio: {
        addedP50: peerRatio(g.addedMs.p50, a.addedMs.p50),
        addedP90: peerRatio(g.addedMs.p90, a.addedMs.p90),
        addedP99: peerRatio(g.addedMs.p99, a.addedMs.p99),
        latencyP50: peerRatio(g.ms.p50, a.ms.p50),
        latencyP99: peerRatio(g.ms.p99, a.ms.p99),
        cpuMsPerRequest: peerRatio(g.cpuMsPerRequest, a.cpuMsPerRequest),
      },
    });
  }

  // ---- closed loop: throughput at a fixed number of workers, each route alone ----
  const saturation: PeersSaturationRow[] = [];
  for (const workers of plan.workers) {
    const row = { workers } as PeersSaturationRow;
    for (const route of ROUTES) {
      log(`closed loop ${workers} workers, ${route}`);
      const c0 = await cpuNow();
      const r = await attack(
        vegeta,
        { targets: [target(route)], rate: 0, workers, durationS: plan.saturationS },
        join(work, 'closed'),
      );
      const c1 = await cpuNow();
      const s = r.byTarget.get(route)!.samples;
      const ok = s.filter((x) => x.ok);
      const p = latencies(ok);
      row[route] = {
        rps: Math.round(ok.length / Math.max(r.elapsedS, 1e-9)),
        p50Ms: roundMs(p.p50),
        p99Ms: roundMs(p.p99),
        errors: s.length - ok.length,
        cpuMsPerRequest: route === 'direct' ? null : roundMs(((c1[route] - c0[route]) * 1000) / Math.max(1, s.length)),
      };
    }
    row.ratio = {
      rps: peerRatio(row.governed.rps, row.ai_gateway.rps),
      p99: peerRatio(row.governed.p99Ms, row.ai_gateway.p99Ms),
      cpuMsPerRequest: peerRatio(row.governed.cpuMsPerRequest, row.ai_gateway.cpuMsPerRequest),
    };
    saturation.push(row);
  }

  // ---- streaming: every route at once, a few streams each, timed per token ----
  const streamRoutes: StreamRoute[] = ROUTES.map((route) => ({ route, description: DESCRIPTION[route], gates: [] }));
  const timings = new Map<string, StreamTiming[]>(ROUTES.map((r) => [r, []]));
  const headers = {
    authorization: `Bearer ${key}`,
    'x-mock-chunks': String(plan.chunks),
    'x-mock-chunk-delay-ms': String(plan.chunkDelayMs),
    'x-mock-timestamps': '1',
  };
  const s0 = await cpuNow();
  for (let round = 0; round < plan.streamRounds; round++) {
    if (round % 5 === 0) log(`streaming round ${round + 1}/${plan.streamRounds}`);
    await Promise.all(
      ROUTES.flatMap((route) =>
        Array.from({ length: plan.streamsPerRoute }, async () => {
          const t = await streamChat(`${envoy.url(route)}/v1/chat/completions`, headers, STREAM_CHAT);
          timings.get(route)!.push(t);
        }),
      ),
    );
  }
  const s1 = await cpuNow();
  const streamCpu = new Map<string, number>(PEERS.map((p) => [p, s1[p] - s0[p]]));
  const streaming = streamingRows(streamRoutes, timings, streamCpu, plan.chunks);
  const sg = streaming.routes.find((r) => r.route === 'governed')!;
  const sa = streaming.routes.find((r) => r.route === 'ai_gateway')!;

  const envoyCounters = await extProcCounters(envoy);
  const processes = [];
  for (const p of PEERS) {
    processes.push({
      route: p,
      process:
        p === 'governed' ? 'node extproc/main.js, compiled (LM Gate)' : `cmd/extproc (AI Gateway ${build.version})`,
      cpuS: roundMs(await procOf[p].cpuSeconds()),
      peakRssMiB: await procOf[p].peakRssMiB(),
      tokensMetered: await procOf[p].tokensMetered(),
    });
  }

  const result: PeersResult = peersResult.parse({
    schema: 'lm-gate-bench-peers/1',
    kind: plan.kind,
    startedAt: started.toISOString(),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    command: commandLine('bench/peers.ts'),
    commit: gitCommit(),
    environment: { ...runEnvironment(plan.envoyConcurrency), go: build.go },
    aiGateway: {
      module: AI_GATEWAY_MODULE,
      version: build.version,
      stamp: build.stamp,
      commands: build.commands,
      buildS: build.buildS,
      cached: build.cached,
      filterConfig: aiGatewayFilterConfig(build.version),
    },
    routes: ROUTES.map((route) => ({ route, description: DESCRIPTION[route] })),
    method: {
      request: `POST /v1/chat/completions, non-streaming, ${CHAT.length}-byte JSON body, as in npm run bench; the mock answers at once`,
      openLoop: `after a ${plan.warmupS} s warm-up of every route (V8 tiers the gate's code up meanwhile), vegeta at a fixed rate, round-robin over [direct, governed, ai_gateway], request by request, the leading route rotated each round: each route gets the rate shown`,
      rates: plan.rates,
      rounds: plan.rounds,
      sliceS: plan.sliceS,
      warmupS: plan.warmupS,
      saturation: 'vegeta closed loop (-rate=0) with a fixed number of workers, each route alone',
      workers: plan.workers,
      saturationS: plan.saturationS,
      streaming: `${plan.streamRounds} rounds of ${plan.streamsPerRoute} concurrent streams on every route at once, ${plan.chunks} SSE chunks ${plan.chunkDelayMs} ms apart`,
      added: 'percentile through the route minus the same percentile direct, in the same slices',
      ratio:
        'LM Gate / AI Gateway from the rounded figures; below 1 LM Gate is lower (latency, CPU, memory), above 1 higher (throughput); none where either side is not above zero',
      cpu: 'user + system CPU of each ext_proc server process from /proc/<pid>/stat around each slice; peak RSS from VmHWM',
    },
    verification,
    openLoop,
    saturation,
    streaming: {
      chunks: plan.chunks,
      chunkDelayMs: plan.chunkDelayMs,
      routes: streaming.routes,
      ratio: {
        ttftAddedP50: peerRatio(sg.ttftAddedMs?.p50 ?? null, sa.ttftAddedMs?.p50 ?? null),
        chunkTripAddedP50: peerRatio(sg.chunkTripAddedMs?.p50 ?? null, sa.chunkTripAddedMs?.p50 ?? null),
        cpuMsPerStream: peerRatio(sg.gateCpuMsPerRequest, sa.gateCpuMsPerRequest),
      },
    },
    processes,
    processRatio: {
      cpuS: peerRatio(processes[0]!.cpuS, processes[1]!.cpuS),
      peakRssMiB: peerRatio(processes[0]!.peakRssMiB, processes[1]!.peakRssMiB),
    },
    envoyCounters,
  });

  await mkdir(outDir, { recursive: true });
  const base = join(outDir, plan.kind === 'full' ? 'peers' : 'peers-smoke');
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${base}.md`, renderPeersMarkdown(result));
  await writeFile(`${base}.svg`, renderPeersChart(result));
  log(`wrote ${base}.json, .md, .svg`);
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}

/** Each measured route answers; LM Gate refuses a request without a key; through each
 * verification listener a JSON answer and a stream, with the token counts each gateway put in
 * Envoy's dynamic metadata (from that listener's access log) against the usage the client got. */
async function verify(envoy: BenchEnvoy, accessLog: string): Promise<VerificationRow[]> {
  const post = (route: string, body: string | Buffer, auth = true) =>
    fetch(`${envoy.url(route)}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-mock-chunks': '10',
        ...(auth ? { authorization: `Bearer ${key}` } : {}),
      },
      body,
    });
  for (const route of ROUTES) {
    const r = await post(route, CHAT);
    if (r.status !== 200) throw new Error(`sanity: ${route} answered ${r.status}: ${await r.text()}`);
  }
  const refused = await post('governed', CHAT, false);
  if (refused.status !== 401) throw new Error(`sanity: governed without a key answered ${refused.status}`);

  const rows: VerificationRow[] = [];
  for (const route of ['governed_verify', 'ai_gateway_verify']) {
    for (const request of ['json', 'stream'] as const) {
      const before = await readFile(accessLog, 'utf8').catch(() => '');
      const res = await post(route, request === 'json' ? CHAT : STREAM_CHAT);
      const text = await res.text();
      const usage = usageOf(text);
      // Envoy writes the access log line when the request ends and flushes it every 50 ms.
      let line: Record<string, any> | undefined;
      for (let i = 0; i < 100 && !line; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const added = (await readFile(accessLog, 'utf8').catch(() => '')).slice(before.length).trim();
        if (added) line = JSON.parse(added.split('\n').at(-1)!) as Record<string, any>;
      }
      if (!line) throw new Error(`verification: no access log line for ${route} ${request}`);
      const metadata = (route.startsWith('governed') ? line.lm_gate : line.ai_gateway) ?? {};
      const [inKey, outKey] = route.startsWith('governed')
        ? ['input_tokens', 'output_tokens']
        : [AIGW_COST_KEYS.input, AIGW_COST_KEYS.output];
      const metered =
        res.status === 200 &&
        usage.total > 0 &&
        metadata[inKey] === usage.input &&
        metadata[outKey] === usage.output &&
        (route.startsWith('governed') || metadata[AIGW_COST_KEYS.total] === usage.total);
      rows.push({ route, request, status: res.status, usage, metadata, metered });
    }
  }
  return rows;
}

/** The last usage object in a JSON answer or an SSE stream. */
function usageOf(text: string): { input: number; output: number; total: number } {
  const all = [...text.matchAll(/"usage":(\{[^}]*\})/g)];
  const u = all.length > 0 ? (JSON.parse(all.at(-1)![1]!) as Record<string, number>) : {};
  return { input: u.prompt_tokens ?? 0, output: u.completion_tokens ?? 0, total: u.total_tokens ?? 0 };
}

/** Envoy's view of each gateway's filters: streams, failures, timeouts, rejected mutations,
 * GOAWAYs from the server. Non-zero failures explain errors in the tables. */
async function extProcCounters(envoy: BenchEnvoy): Promise<Record<string, Record<string, number>>> {
  const text = await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats?usedonly`)).text();
  const wanted = [
    'streams_started',
    'streams_failed',
    'message_timeouts',
    'server_half_closed',
    'spurious_msgs_received',
    'rejected_header_mutations',
  ];
  const out: Record<string, Record<string, number>> = {};
  const add = (label: string, prefix: string, cluster: string) => {
    const c: Record<string, number> = {};
    for (const w of wanted) c[w] = envoyStat(text, `${prefix}.ext_proc.${w}`);
    c.server_goaway = envoyStat(text, `cluster.${cluster}.upstream_cx_close_notify`);
    out[label] = c;
  };
  add('governed', 'http.governed', 'lm_gate_governed');
  add('ai_gateway (router filter)', 'http.ai_gateway', 'ext_proc_ai_gateway');
  add('ai_gateway (upstream filter)', 'cluster.model_server_ai_gateway', 'ext_proc_ai_gateway');
  return out;
}
