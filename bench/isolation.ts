import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../extproc/config/load.ts';
import { generateApiKey, hashApiKey } from '../extproc/identity/api-keys.ts';
import { envoyVersion, ROOT } from '../test/harness/envoy.ts';
import { CHAT, commandLine, gitCommit } from './lib/common.ts';
import { attackerBody, BODY_DESCRIPTIONS, BODY_IDS, type BodyId, jsonDepth } from './lib/isolation-bodies.ts';
import {
  type AttackerStats,
  type BodyInfo,
  type IsolationResult,
  type Phase,
  type Probe,
  ratio,
  renderIsolationMarkdown,
  type Slice,
  type Summary,
  sliceTable,
  statusText,
  summaryTable,
  tenantStats,
} from './lib/isolation-report.ts';
import {
  envoyCounters,
  gateLoopMaxMs,
  keyHashEnv,
  startGateWithConfig,
  startIsolationEnvoy,
  startSink,
  TENANTS,
  type Tenant,
  writeTenantProfile,
} from './lib/isolation-topology.ts';
import { roundMs } from './lib/stats.ts';
import { type BenchEnvoy, startMock } from './lib/topology.ts';
import { type AttackResult, attack, ensureVegeta, type Sample, type Target, VEGETA_VERSION } from './lib/vegeta.ts';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    seconds: { type: 'string' },
    attacker: { type: 'string' },
    rate: { type: 'string' },
    rounds: { type: 'string' },
    workers: { type: 'string' },
    'depth-limit': { type: 'string' },
    out: { type: 'string' },
    // The attacker's requests skip the gate (an Envoy listener with no ext_proc filter, to the
    // same sink): what the same bytes cost the victim through Envoy alone, the floor for the gate.
    bypass: { type: 'boolean' },
    // A byte rate limit per tenant with a queue (README "Limits and budgets"): bytes a second
    // each tenant may upload, and how long a request over it waits for its turn.
    'upload-limit': { type: 'string' },
    'queue-ms': { type: 'string' },
  },
});
const smoke = values.smoke === true;
const num = (name: string, v: string | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return x;
};
const plan = {
  /** The victim's window per slice. */
  seconds: num('seconds', values.seconds, smoke ? 2 : 20),
  rate: num('rate', values.rate, 50),
  rounds: num('rounds', values.rounds, smoke ? 1 : 2),
  workers: num('workers', values.workers, 8),
  /** The depth bound body b is built to (the fix's limit). */
  depthLimit: num('depth-limit', values['depth-limit'], 64),
  /** The attacker starts this long before the victim's window and stops this long after. */
  leadS: smoke ? 0.5 : 2,
  tailS: smoke ? 0.5 : 1,
  /** Pause between slices, so one slice's backlog does not spill into the next. */
  settleS: smoke ? 0.5 : 2,
  warmupS: smoke ? 1 : 3,
  /** Requests of each body sent alone, one at a time, before the slices. */
  probes: smoke ? 1 : 3,
  envoyConcurrency: 2,
};
/** The body that raised the victim's p99 most in full runs against the code before the fix
 * (b, 412 ms, just ahead of a, 394 ms; a caused the most 504s). b also passes a depth bound. */
const WORST: BodyId = 'b';
const ids: BodyId[] = (() => {
  const a = values.attacker ?? WORST;
  if (a === 'all') return [...BODY_IDS];
  const out = a.split(',').map((s) => s.trim()) as BodyId[];
  for (const id of out)
    if (!BODY_IDS.includes(id)) throw new Error(`--attacker: ${id} is none of ${BODY_IDS.join(', ')} or all`);
  return out;
})();
const outDir = values.out ?? join(ROOT, 'bench', 'results', ...(smoke ? ['raw'] : []));
const bypass = values.bypass === true;
const uploads =
  values['upload-limit'] === undefined
    ? undefined
    : { limit: num('upload-limit', values['upload-limit'], 0), queueMs: num('queue-ms', values['queue-ms'], 1000) };
const baseName = `${smoke ? 'isolation-smoke' : 'isolation'}${bypass ? '-bypass' : ''}${uploads ? '-uploads' : ''}`;

const started = new Date();
/** Other work on the machine shows here (and per slice as load1). */
const loadStart = Math.round(loadavg()[0]! * 100) / 100;
const t0 = performance.now();
const log = (m: string) => process.stderr.write(`[isolation ${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);
const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

const keys = Object.fromEntries(TENANTS.map((t) => [t, generateApiKey(t)])) as Record<Tenant, string>;
const gateEnv = Object.fromEntries(TENANTS.map((t) => [keyHashEnv(t), hashApiKey(keys[t])]));
const work = await mkdtemp(join(tmpdir(), 'lm-gate-isolation-'));
const stops: (() => Promise<unknown>)[] = [];

try {
  const vegeta = await ensureVegeta(log);
  const profile = await writeTenantProfile(work, 'governed', uploads);
  // The limit the gate will apply, read the way the gate reads it.
  const config = await loadConfigFile(profile, {
    ...process.env,
    ...gateEnv,
    LMG_GRPC_PORT: '1',
    LMG_ADMIN_PORT: '2',
    LMG_AUDIT_PATH: join(work, 'audit.log'),
  });
  const limit = config.server.maxRequestBodyBytes;
  const bodies = new Map(ids.map((id) => [id, attackerBody(id, limit, plan.depthLimit)]));
  log(`bodies ${ids.join(', ')} built, each at most ${limit} bytes; starting mock, sink, gate, envoy`);

  const mock = await startMock();
  stops.push(() => mock.proc.stop());
  const sink = await startSink();
  stops.push(() => sink.close());
  const gate = await startGateWithConfig('isolation', profile, gateEnv);
  stops.push(() => gate.stop());
  const envoy = await startIsolationEnvoy(
    [
      { name: 'victim', gate },
      { name: 'attacker', gate, upstreamPort: sink.port },
      { name: 'bypass', upstreamPort: sink.port },
    ],
    mock.port,
    plan.envoyConcurrency,
    work,
  );
  stops.unshift(() => envoy.stop());

  const target = (tenant: Tenant, body: Buffer): Target => ({
    name: tenant,
    url: `${envoy.url(tenant === 'attacker' && bypass ? 'bypass' : tenant)}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys[tenant]}` },
    body,
  });
  await sanityCheck(envoy);

  log(`warm-up ${plan.warmupS}s`);
  await attack(
    vegeta,
    { targets: [target('victim', CHAT)], rate: plan.rate, durationS: plan.warmupS },
    join(work, 'w'),
  );

  // ---- each body alone, one request at a time ----
  const bodyInfo: BodyInfo[] = [];
  for (const id of ids) {
    const body = bodies.get(id)!;
    const alone: Probe[] = [];
    for (let i = 0; i < plan.probes; i++) alone.push(await probe(target('attacker', body)));
    log(`body ${id}: ${body.length} bytes, alone: ${alone.map((p) => `${p.status} ${p.ms} ms`).join(', ')}`);
    bodyInfo.push({
      id,
      description: BODY_DESCRIPTIONS[id],
      bytes: body.length,
      depth: jsonDepth(body),
      alone,
    });
  }

  // ---- slices: unloaded first in every round, then each body, reversed every other round ----
  const order: { phase: Phase; round: number }[] = [];
  for (let r = 1; r <= plan.rounds; r++) {
    order.push({ phase: 'unloaded', round: r });
    for (const id of r % 2 === 1 ? ids : [...ids].reverse()) order.push({ phase: id, round: r });
  }
  const counterNames = ['victim', 'attacker'].flatMap((l) =>
    ['message_timeouts', 'streams_failed'].map((c) => `http.${l}.ext_proc.${c}`),
  );
  const runs: { phase: Phase; round: number; victim: Sample[]; attacker?: AttackResult; slice: Slice }[] = [];
  for (const [i, { phase, round }] of order.entries()) {
    log(`slice ${i + 1}/${order.length}: round ${round}, victim ${plan.rate} req/s for ${plan.seconds}s, ${phase}`);
    await sleep(plan.settleS);
    const cpu0 = await gate.cpuSeconds();
    const envoyCpu0 = await envoy.cpuSeconds();
    await gateLoopMaxMs(gate); // resets the gate's event-loop delay histogram
    const c0 = await envoyCounters(envoy, counterNames);
    const upstream0 = sink.requests;

    let attacker: Promise<{ r?: AttackResult; err?: unknown }> | undefined;
    if (phase !== 'unloaded') {
      attacker = attack(
        vegeta,
        {
          targets: [target('attacker', bodies.get(phase)!)],
          rate: 0,
          workers: plan.workers,
          durationS: plan.leadS + plan.seconds + plan.tailS,
        },
        join(work, 'attacker'),
      ).then(
        (r) => ({ r }),
        (err: unknown) => ({ err }),
      );
      await sleep(plan.leadS);
    }
    const victim = await attack(
      vegeta,
      { targets: [target('victim', CHAT)], rate: plan.rate, durationS: plan.seconds },
      join(work, 'victim'),
    );
    const settled = attacker ? await attacker : undefined;
    if (settled?.err) throw settled.err;
    const ar = settled?.r;

    const c1 = await envoyCounters(envoy, counterNames);
    const envoyDelta: Record<string, number> = {};
    for (const k of counterNames) envoyDelta[k.replace(/^http\./, '').replace('.ext_proc.', '.')] = c1[k]! - c0[k]!;
    const vs = victim.byTarget.get('victim')!.samples;
    const slice: Slice = {
      phase,
      round,
      victim: tenantStats(vs),
      p99Ratio: null,
      ...(ar
        ? {
            attacker: attackerStats([ar]),
            attackerReachedUpstream: sink.requests - upstream0,
          }
        : {}),
      gate: { cpuS: roundMs((await gate.cpuSeconds()) - cpu0), loopMaxMs: await gateLoopMaxMs(gate) },
      envoyCpuS: roundMs((await envoy.cpuSeconds()) - envoyCpu0),
      envoy: envoyDelta,
      load1: Math.round(loadavg()[0]! * 100) / 100,
    };
    log(
      `  victim p50/p99/max ${slice.victim.ms.p50}/${slice.victim.ms.p99}/${slice.victim.ms.max} ms, ${statusText(slice.victim.statuses)}` +
        (slice.attacker ? `; attacker ${statusText(slice.attacker.statuses)}` : '') +
        `; gate loop max ${slice.gate.loopMaxMs} ms`,
    );
    runs.push({ phase, round, victim: vs, ...(ar ? { attacker: ar } : {}), slice });
  }

  // ---- pooled per phase; ratios against the pooled unloaded p99 ----
  const summary: Summary[] = [];
  for (const phase of ['unloaded', ...ids] as Phase[]) {
    const mine = runs.filter((r) => r.phase === phase);
    const victim = tenantStats(mine.flatMap((r) => r.victim));
    const row: Summary = { phase, slices: mine.length, victim, p99Ratio: null };
    if (phase !== 'unloaded') row.attacker = attackerStats(mine.map((r) => r.attacker!));
    summary.push(row);
  }
  const base = summary[0]!.victim.ms.p99;
  for (const s of summary) s.p99Ratio = ratio(s.victim.ms.p99, base);
  for (const r of runs) r.slice.p99Ratio = ratio(r.slice.victim.ms.p99, base);

  const result: IsolationResult = {
    schema: 'lm-gate-isolation/1',
    kind: smoke ? 'smoke' : 'full',
    startedAt: started.toISOString(),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    command: commandLine('bench/isolation.ts'),
    commit: gitCommit(),
    environment: {
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      cores: cpus().length,
      loadStart: loadStart,
      loadEnd: Math.round(loadavg()[0]! * 100) / 100,
      node: process.version,
      envoy: envoyVersion().replace(/^.*version:\s*/, ''),
      vegeta: `v${VEGETA_VERSION}`,
      envoyConcurrency: plan.envoyConcurrency,
    },
    method: {
      victim: `tenant victim, vegeta open loop at ${plan.rate} req/s for ${plan.seconds} s per slice, POST /v1/chat/completions non-streamed (${CHAT.length}-byte body) through Envoy and the gate to the mock model server`,
      attacker: `tenant attacker, vegeta closed loop with ${plan.workers} workers sending one body back to back, from ${plan.leadS} s before the victim's window to ${plan.tailS} s after it, through the same Envoy and gate to a sink upstream that reads and discards the body; bodies at most server.maxRequestBodyBytes = ${limit} bytes, body b at depth ${plan.depthLimit}`,
      limits: uploads
        ? `each tenant may upload ${uploads.limit} request body bytes a second (limits.rate unit bytes, scope tenant), a request over it waiting up to ${uploads.queueMs} ms for its turn (queueMs)`
        : 'no byte limit',
      slices: `${plan.rounds} round(s); each round one unloaded slice, then one slice per body (order reversed every other round); ${plan.settleS} s pause between slices`,
      latency:
        'vegeta, request sent to response read; percentiles over every request (failed ones too, with their time); ratio = victim p99 / pooled unloaded victim p99',
      rateRps: plan.rate,
      seconds: plan.seconds,
      rounds: plan.rounds,
      workers: plan.workers,
      maxRequestBodyBytes: limit,
      depthLimit: plan.depthLimit,
    },
    bodies: bodyInfo,
    summary,
    slices: runs.map((r) => r.slice),
  };

  await mkdir(outDir, { recursive: true });
  const file = join(outDir, baseName);
  await writeFile(`${file}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${file}.md`, renderIsolationMarkdown(result));
  process.stdout.write(
    `\n${[...summaryTable(summary), '', ...sliceTable(result.slices)].join('\n')}\n\nwrote ${file}.json, .md\n`,
  );
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}

/** The attacker's figures over one or more of its runs. */
function attackerStats(results: AttackResult[]): AttackerStats {
  const samples = results.flatMap((r) => r.byTarget.get('attacker')!.samples);
  const elapsed = results.reduce((sum, r) => sum + r.elapsedS, 0);
  return { ...tenantStats(samples), rps: roundMs(samples.length / Math.max(elapsed, 1e-9)) };
}

async function post(envoy: BenchEnvoy, tenant: Tenant, key: string | undefined): Promise<Response> {
  return fetch(`${envoy.url(tenant)}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: CHAT,
  });
}

/** Both tenants get through, and the gate is really in the path: no key, no answer. */
async function sanityCheck(envoy: BenchEnvoy): Promise<void> {
  for (const t of TENANTS) {
    const r = await post(envoy, t, keys[t]);
    if (r.status !== 200) throw new Error(`sanity: ${t} answered ${r.status}: ${await r.text()}`);
  }
  const refused = await post(envoy, 'victim', undefined);
  if (refused.status !== 401) throw new Error(`sanity: victim without a key answered ${refused.status}`);
}

async function probe(t: Target): Promise<Probe> {
  const start = performance.now();
  try {
    const r = await fetch(t.url, {
      method: t.method,
      headers: t.headers,
      body: t.body!,
      signal: AbortSignal.timeout(30_000),
    });
    await r.arrayBuffer();
    return { status: String(r.status), ms: roundMs(performance.now() - start) };
  } catch (err) {
    return { status: (err as Error).name, ms: roundMs(performance.now() - start) };
  }
}
