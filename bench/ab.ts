// A/B runs for one lever at a time: the `governed` profile started once per variant (Node flags,
// a Unix socket instead of TCP, another profile), every variant behind the same Envoy and beside
// the direct route, interleaved request by request as in `npm run bench:peers`. Prints added
// latency percentiles, gate CPU per request, the gate's own time per request (its audit's
// latency_ms.gate) and peak RSS per variant, so a lever's before and after come from the same
// run on the same machine. Not a timed test: read the ratios.
//
//   npm run bench:ab -- --variant base --variant 'semi64:node=--max-semi-space-size=64' --rates 100,300
//
// A variant is `name[:item,item…]`; items: `node=<flags>` (the gate's NODE_OPTIONS instead of
// the bench's --max-semi-space-size=4; spaces allowed), `args=<flags>` (on the gate's node
// command line: V8 flags NODE_OPTIONS refuses, such as --heap-growing-percent), `uds` (Envoy reaches the gate over its
// Unix socket), `profile=<bench profile>`, `workers=<n>` (server.workers, one Envoy endpoint per
// worker), `redis` (the profile's limits and budgets counted in a real redis-server the run
// starts beside the gates, limits.store: redis, instead of in memory), `audit=<mode>` (the audit
// sink's durability: none, interval or strict), `duplex` (FULL_DUPLEX_STREAMED request mode),
// `envoyheaders` (Envoy adds its x-envoy-internal and x-forwarded-for to the gate's streams),
// `bin=<path>` (the gate run by another Node binary: a release against the bench's own),
// `rev=<git revision>` (the gate of another commit, compiled for the run: a lever's before), `idle`
// (the gate serves nothing for --idle seconds after the warm-up while the other routes go on):
//
//   npm run bench:ab -- --variant memory --variant 'redis:redis'
//   npm run bench:ab -- --variant 'none:audit=none' --variant 'interval:audit=interval' --variant 'strict:audit=strict'
//
// --body dlp sends the dlp profile's 16 KB prompt (16 e-mail addresses and card numbers) to every
// route instead of the small chat body: DLP's added latency against the same gate without it.
//
//   npm run bench:ab -- --body dlp --variant 'dlp:profile=dlp' --variant governed_16k
//
// --streams R adds the streaming profile of `npm run bench:peers`: R rounds of 3 concurrent
// streams (200 SSE chunks 10 ms apart) on every route at once, the routes' start order rotated
// each round; it prints TTFT and what each route adds to every chunk's trip, against the direct
// route, and gate CPU per stream. `--rates ''` skips the open loop:
//
//   npm run bench:ab -- --rates '' --streams 40 --variant 'before:rev=HEAD~1' --variant after
//
// --idle S: what a quiet spell costs, as a gate meets it between a night and the morning or
// between `npm run bench`'s phases. After the warm-up, the routes without the `idle` item are
// sent 100 req/s each for S seconds and the idle gates nothing (Envoy's health checks only); then
// all are measured as usual. V8's memory reducer acts on Node 24 after a 100 s watchdog, so give
// S over 100 (README "In production"):
//
//   npm run bench:ab -- --idle 200 --body dlp --variant 'hot:profile=dlp' \
//     --variant 'idle:profile=dlp,idle' --variant 'idle_before:profile=dlp,idle,args=--memory-reducer-favors-memory'
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { startRedis } from '../test/harness/redis.ts';
import { CHAT, chatTarget, DLP_CHAT, errorsOf, latencies, roundedPercentiles, STREAM_CHAT } from './lib/common.ts';
import { gateMillis, nearestRank } from './lib/gate-time.ts';
import { difference, roundMs } from './lib/stats.ts';
import { type StreamTiming, streamChat } from './lib/stream-client.ts';
import { streamingRows } from './lib/streaming.ts';
import {
  type BenchGate,
  builtRevisionEntry,
  DUPLEX_PROCESSING_MODE,
  GATE_NODE_OPTIONS,
  startBenchEnvoy,
  startGate,
  startMock,
} from './lib/topology.ts';
import { attack, ensureVegeta, type Sample, type Target } from './lib/vegeta.ts';
import { FULL } from './plan.ts';

export interface Variant {
  name: string;
  profile: string;
  nodeOptions: string | undefined;
  /** Flags on the gate's node command line (V8 flags NODE_OPTIONS refuses). */
  nodeArgs: string[];
  unixSocket: boolean;
  workers: number;
  redis: boolean;
  /** The audit sink's durability mode (audit.durability), when not the profile's own. */
  audit: 'none' | 'interval' | 'strict' | undefined;
  /** The gate's ext_proc filter in FULL_DUPLEX_STREAMED request mode (README "Envoy filter
   * modes"): request headers and body in one round trip. */
  duplex: boolean;
  /** Envoy adds x-envoy-internal and x-forwarded-for to the gate's gRPC streams, as it did
   * before envoy/envoy.yaml set skip_envoy_headers (the lever's before). */
  envoyHeaders: boolean;
  /** The gate run by another Node binary than the bench's own (a release to compare). */
  bin: string | undefined;
  /** The gate built from this git revision instead of the working tree (a lever's before). */
  rev: string | undefined;
  /** The gate gets no requests for --idle seconds after the warm-up, while the others do. */
  idle: boolean;
}

/** `name[:item,item…]` into a variant; throws on an item it does not know. */
export function parseVariant(spec: string): Variant {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`variant name ${JSON.stringify(name)}: use [a-z][a-z0-9_]*`);
  const v: Variant = {
    name,
    profile: 'governed',
    nodeOptions: undefined,
    nodeArgs: [],
    unixSocket: false,
    workers: 1,
    redis: false,
    audit: undefined,
    duplex: false,
    envoyHeaders: false,
    bin: undefined,
    rev: undefined,
    idle: false,
  };
  const items = colon < 0 ? [] : spec.slice(colon + 1).split(/,(?=[a-z]+(?:=|,|$))/);
  for (const item of items.filter((i) => i !== '')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (key === 'node') v.nodeOptions = value;
    else if (key === 'args' && value) v.nodeArgs = value.split(' ').filter((a) => a !== '');
    else if (key === 'uds' && eq < 0) v.unixSocket = true;
    else if (key === 'redis' && eq < 0) v.redis = true;
    else if (key === 'duplex' && eq < 0) v.duplex = true;
    else if (key === 'envoyheaders' && eq < 0) v.envoyHeaders = true;
    else if (key === 'idle' && eq < 0) v.idle = true;
    else if (key === 'bin' && value) v.bin = value;
    else if (key === 'rev' && /^[\w./~^-]+$/.test(value)) v.rev = value;
    else if (key === 'profile' && value) v.profile = value;
    else if (key === 'audit' && (value === 'none' || value === 'interval' || value === 'strict')) v.audit = value;
    else if (key === 'workers' && /^[1-9]\d*$/.test(value)) v.workers = Number(value);
    else
      throw new Error(
        `variant ${name}: unknown item ${JSON.stringify(item)} (node=<flags>, args=<flags>, uds, profile=<name>, workers=<n>, redis, audit=none|interval|strict, duplex, envoyheaders, bin=<node binary>, rev=<git revision>, idle)`,
      );
  }
  return v;
}

/** The request body every route is sent (--body). */
export function benchBody(name: string): Buffer {
  if (name === 'chat') return CHAT;
  if (name === 'dlp') return DLP_CHAT;
  throw new Error(`--body ${JSON.stringify(name)}: chat or dlp`);
}

async function main() {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true },
      rates: { type: 'string', default: '100,300' },
      rounds: { type: 'string', default: '3' },
      slice: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '5' },
      workers: { type: 'string', default: '' },
      body: { type: 'string', default: 'chat' },
      idle: { type: 'string', default: '0' },
      streams: { type: 'string', default: '0' },
    },
  });
  const variants = (values.variant ?? []).map(parseVariant);
  const body = benchBody(values.body);
  if (variants.length < 1) throw new Error('give at least one --variant');
  if (new Set(variants.map((v) => v.name)).size !== variants.length) throw new Error('variant names must differ');
  const rates = values.rates === '' ? [] : values.rates.split(',').map(Number);
  const streamRounds = Number(values.streams);
  if (!(Number.isInteger(streamRounds) && streamRounds >= 0))
    throw new Error(`--streams ${JSON.stringify(values.streams)}: rounds`);
  const rounds = Number(values.rounds);
  const sliceS = Number(values.slice);
  const idleS = Number(values.idle);
  if (!(idleS >= 0)) throw new Error(`--idle ${JSON.stringify(values.idle)}: seconds`);
  if (idleS > 0 !== variants.some((v) => v.idle))
    throw new Error('--idle S and a variant with the idle item go together');
  const closedWorkers = values.workers ? values.workers.split(',').map(Number) : [];
  const log = (m: string) => process.stderr.write(`[bench:ab] ${m}\n`);

  const key = generateApiKey('bench');
  const work = await mkdtemp(join(tmpdir(), 'lm-gate-bench-ab-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const vegeta = await ensureVegeta(log);
    const mock = await startMock();
    stops.push(() => mock.proc.stop());
    const redis = variants.some((v) => v.redis) ? await startRedis() : undefined;
    if (redis) stops.push(() => redis.stop());
    const gates = new Map<string, BenchGate>();
    for (const v of variants) {
      const env: Record<string, string> = { LMG_BENCH_KEY_SHA256: hashApiKey(key) };
      if (v.nodeOptions !== undefined) env.NODE_OPTIONS = v.nodeOptions;
      const g = await startGate(v.name, v.profile, env, {
        ...(v.nodeArgs.length > 0 ? { nodeArgs: v.nodeArgs } : {}),
        unixSocket: v.unixSocket,
        workers: v.workers,
        ...(v.redis && redis ? { redisUrl: redis.url } : {}),
        ...(v.audit ? { auditDurability: v.audit } : {}),
        ...(v.bin ? { execPath: v.bin } : {}),
        ...(v.rev ? { entry: await builtRevisionEntry(v.rev) } : {}),
      });
      stops.push(() => g.stop());
      gates.set(v.name, g);
    }
    const routes = ['direct', ...variants.map((v) => v.name)];
    const envoy = await startBenchEnvoy(
      routes.map((name) => ({
        name,
        gate: gates.get(name),
        ...(variants.find((v) => v.name === name)?.duplex ? { processingMode: DUPLEX_PROCESSING_MODE } : {}),
        ...(variants.find((v) => v.name === name)?.envoyHeaders ? { envoyHeaders: true } : {}),
      })),
      mock.port,
      2,
    );
    stops.unshift(() => envoy.stop());
    const target = (route: string): Target => chatTarget(envoy, route, key, body);
    for (const route of routes) {
      const r = await fetch(target(route).url, { method: 'POST', headers: target(route).headers, body });
      if (r.status !== 200) throw new Error(`sanity: ${route} answered ${r.status}: ${await r.text()}`);
    }
    log(`warm-up ${values.warmup}s`);
    await attack(
      vegeta,
      { targets: routes.map(target), rate: 100 * routes.length, durationS: Number(values.warmup) },
      join(work, 'warmup'),
    );
    if (idleS > 0) {
      const busy = routes.filter((r) => !variants.find((v) => v.name === r)?.idle);
      log(
        `idle ${idleS}s: ${variants
          .filter((v) => v.idle)
          .map((v) => v.name)
          .join(', ')} (the others at 100 req/s)`,
      );
      await attack(
        vegeta,
        { targets: busy.map(target), rate: 100 * busy.length, durationS: idleS },
        join(work, 'idle'),
      );
    }
    const cpuNow = async () =>
      new Map(await Promise.all([...gates].map(async ([n, g]) => [n, await g.cpuSeconds()] as const)));

    // The gate's own time per request (its audit's latency_ms.gate), read from what each rate
    // appended: a tail the client sees but the gate does not is spent around it.
    const auditOf = (g: BenchGate) => readFile(join(g.dir, 'audit.log'), 'utf8').catch(() => '');
    const lines = [
      '| req/s | variant | requests | errors | added p50 | p90 | p99 | p99.9 | CPU ms/req | gate p50 | gate p99 |',
      '|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ];
    for (const rate of rates) {
      const auditFrom = new Map(
        await Promise.all([...gates].map(async ([n, g]) => [n, (await auditOf(g)).length] as const)),
      );
      const samples = new Map<string, Sample[]>(routes.map((r) => [r, []]));
      const cpu = new Map<string, number>(variants.map((v) => [v.name, 0]));
      for (let round = 0; round < rounds; round++) {
        const order = routes.map((_, i) => routes[(i + round) % routes.length]!);
        log(`${rate} req/s per route, round ${round + 1}/${rounds}: ${order.join(' / ')}`);
        const c0 = await cpuNow();
        const r = await attack(
          vegeta,
          { targets: order.map(target), rate: rate * routes.length, durationS: sliceS },
          join(work, 'open'),
        );
        const c1 = await cpuNow();
        for (const v of variants) cpu.set(v.name, cpu.get(v.name)! + c1.get(v.name)! - c0.get(v.name)!);
        for (const route of routes) samples.get(route)!.push(...r.byTarget.get(route)!.samples);
      }
      const direct = latencies(samples.get('direct')!);
      for (const v of variants) {
        const s = samples.get(v.name)!;
        const added = roundedPercentiles(difference(latencies(s), direct));
        const errors = Object.entries(errorsOf(s))
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ');
        const cpuMs = roundMs((cpu.get(v.name)! * 1000) / Math.max(1, s.length));
        const gate = gateMillis((await auditOf(gates.get(v.name)!)).slice(auditFrom.get(v.name)));
        const gateMs = (p: number) => (gate.length === 0 ? '–' : roundMs(nearestRank(gate, p)));
        lines.push(
          `| ${rate} | ${v.name} | ${s.length} | ${errors || '0'} | ${added.p50} | ${added.p90} | ${added.p99} | ${added.p99_9} | ${cpuMs} | ${gateMs(50)} | ${gateMs(99)} |`,
        );
      }
    }
    if (closedWorkers.length > 0) {
      lines.push(
        '',
        '| workers | variant | req/s | p50 ms | p99 ms | errors | CPU ms/req |',
        '|---:|---|---:|---:|---:|---:|---:|',
      );
      for (const w of closedWorkers)
        for (const v of variants) {
          log(`closed loop ${w} workers, ${v.name}`);
          const c0 = await cpuNow();
          const r = await attack(
            vegeta,
            { targets: [target(v.name)], rate: 0, workers: w, durationS: sliceS },
            join(work, 'closed'),
          );
          const c1 = await cpuNow();
          const s = r.byTarget.get(v.name)!.samples;
          const p = latencies(s);
          const cpuMs = roundMs(((c1.get(v.name)! - c0.get(v.name)!) * 1000) / Math.max(1, s.length));
          const ok = s.filter((x) => x.ok).length;
          lines.push(
            `| ${w} | ${v.name} | ${Math.round(ok / Math.max(r.elapsedS, 1e-9))} | ${roundMs(p.p50)} | ${roundMs(p.p99)} | ${s.length - ok} | ${cpuMs} |`,
          );
        }
    }
    if (streamRounds > 0) {
      const headers = {
        authorization: `Bearer ${key}`,
        'x-mock-chunks': String(FULL.chunks),
        'x-mock-chunk-delay-ms': String(FULL.chunkDelayMs),
        'x-mock-timestamps': '1',
      };
      const timings = new Map<string, StreamTiming[]>(routes.map((r) => [r, []]));
      const c0 = await cpuNow();
      for (let round = 0; round < streamRounds; round++) {
        if (round % 10 === 0) log(`streaming round ${round + 1}/${streamRounds}`);
        // The mock's chunk timers fire in the order the streams started: rotate it.
        const order = routes.map((_, i) => routes[(i + round) % routes.length]!);
        await Promise.all(
          order.flatMap((route) =>
            Array.from({ length: FULL.streamsPerRoute }, async () => {
              timings
                .get(route)!
                .push(await streamChat(`${envoy.url(route)}/v1/chat/completions`, headers, STREAM_CHAT));
            }),
          ),
        );
      }
      const c1 = await cpuNow();
      const cpu = new Map(variants.map((v) => [v.name, c1.get(v.name)! - c0.get(v.name)!]));
      const rows = streamingRows(
        // A DLP gate's hold-back releases held text with a later event: fewer chunks, complete.
        routes.map((route) => ({
          route,
          description: route,
          gates: [],
          mayJoinChunks: variants.find((v) => v.name === route)?.profile === 'dlp',
        })),
        timings,
        cpu,
        FULL.chunks,
      ).routes;
      lines.push(
        '',
        `| variant | streams | errors | TTFT added p50 | added per chunk p50 | p99 | CPU ms/stream |`,
        '|---|---:|---|---:|---:|---:|---:|',
      );
      for (const r of rows) {
        if (r.route === 'direct') continue;
        const errors = Object.entries(r.errors)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ');
        lines.push(
          `| ${r.route} | ${r.requests} | ${errors || '0'} | ${r.ttftAddedMs?.p50 ?? '–'} | ${r.chunkTripAddedMs?.p50 ?? '–'} | ${r.chunkTripAddedMs?.p99 ?? '–'} | ${r.gateCpuMsPerRequest ?? '–'} |`,
        );
      }
    }
    lines.push(
      '',
      '| variant | peak RSS MiB | NODE_OPTIONS | transport | workers | profile |',
      '|---|---:|---|---|---:|---|',
    );
    for (const v of variants)
      lines.push(
        `| ${v.name} | ${await gates.get(v.name)!.peakRssMiB()} | ${v.nodeOptions ?? GATE_NODE_OPTIONS} | ${v.unixSocket ? 'Unix socket' : 'TCP'} | ${v.workers} | ${v.profile} |`,
      );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
