// The human-readable report beside each result: the same figures as the JSON, as tables.
import type { BenchResult } from './result.ts';
import type { Percentiles } from './stats.ts';

const n = (v: number) => (Number.isFinite(v) ? v.toFixed(v !== 0 && Math.abs(v) < 10 ? 2 : 1) : '–');
const p5 = (p: Percentiles) => `${n(p.p50)} | ${n(p.p90)} | ${n(p.p99)} | ${n(p.p99_9)} | ${n(p.max)}`;
const errs = (e: Record<string, number>) =>
  Object.keys(e).length === 0
    ? '0'
    : Object.entries(e)
        .map(([k, v]) => `${v} (${k})`)
        .join(', ');

export function renderMarkdown(r: BenchResult): string {
  const env = r.environment;
  const L: string[] = [];
  L.push(`# LM Gate bench: ${r.kind} run`, '');
  L.push(`- Command: \`${r.command}\` at commit \`${r.commit}\`, ${r.startedAt}, ${r.durationS} s`);
  L.push(`- Machine: ${env.cores} cores (${env.cpuModel}), ${env.memoryGiB} GiB, Linux ${env.kernel}`);
  L.push(`- Node ${env.node}; Envoy ${env.envoy} (--concurrency ${env.envoyConcurrency}); vegeta ${env.vegeta}`);
  L.push(`- Method: ${r.method.added}. ${r.method.openLoop}. Request: ${r.method.request}.`, '');
  L.push(`![added latency](${r.kind === 'full' ? 'latest' : 'smoke'}.svg)`, '');

  L.push('## Added latency, open loop (ms)', '');
  L.push(
    '| profile | req/s | requests (direct / gated) | errors (direct / gated) | added p50 | p90 | p99 | p99.9 | max | direct p50 / p99 | gated p50 / p99 | gate CPU ms/req |',
  );
  L.push('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const o of r.openLoop) {
    L.push(
      `| ${o.profile} | ${o.rateRps} | ${o.requests.direct} / ${o.requests.gated} | ${errs(o.errors.direct)} / ${errs(o.errors.gated)} | ${p5(o.addedMs)} | ${n(o.directMs.p50)} / ${n(o.directMs.p99)} | ${n(o.gatedMs.p50)} / ${n(o.gatedMs.p99)} | ${n(o.gateCpuMsPerRequest)} |`,
    );
  }
  L.push(
    '',
    'Added = a percentile through the gate minus the same percentile direct, both measured in the same slices.',
  );

  L.push('', '## Saturation, closed loop', '');
  L.push('| route | workers | req/s | p50 ms | p99 ms | errors |', '|---|---:|---:|---:|---:|---:|');
  for (const s of r.saturation)
    L.push(`| ${s.route} | ${s.workers} | ${s.rps} | ${n(s.p50Ms)} | ${n(s.p99Ms)} | ${s.errors} |`);
  L.push(
    '',
    `Highest throughput: ${Object.entries(r.saturationMaxRps)
      .map(([k, v]) => `${k} ${v} req/s`)
      .join(', ')}.`,
  );

  const s = r.streaming;
  L.push('', `## Streaming: ${s.chunks} SSE chunks, ${s.chunkDelayMs} ms apart`, '');
  L.push(
    '| route | streams | errors | TTFT p50 | TTFT added p50 | p90 | p99 | chunk trip p50 / p99 | added to each chunk p50 / p99 | gap p50 / p99 | total p50 | gate CPU ms/stream |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const x of s.routes) {
    const a = x.ttftAddedMs;
    L.push(
      `| ${x.route} | ${x.requests} | ${errs(x.errors)} | ${n(x.ttftMs.p50)} | ${a ? n(a.p50) : '–'} | ${a ? n(a.p90) : '–'} | ${a ? n(a.p99) : '–'} | ${n(x.chunkTripMs.p50)} / ${n(x.chunkTripMs.p99)} | ${x.chunkTripAddedMs ? `${n(x.chunkTripAddedMs.p50)} / ${n(x.chunkTripAddedMs.p99)}` : '–'} | ${n(x.gapMs.p50)} / ${n(x.gapMs.p99)} | ${n(x.totalMs.p50)} | ${x.gateCpuMsPerRequest === null ? '–' : n(x.gateCpuMsPerRequest)} |`,
    );
  }
  L.push('');
  for (const x of s.routes) L.push(`- **${x.route}**: ${x.description}.`);
  if (s.perChunkOverheadMs) {
    L.push(
      '',
      `Reading the response STREAMED (governed: one gRPC round trip per chunk) adds ${n(s.perChunkOverheadMs.p50)} ms to each chunk's trip at the median and ${n(s.perChunkOverheadMs.p99)} ms at p99.`,
    );
  }

  L.push(
    '',
    '## Gate processes',
    '',
    '| gate | profile | CPU s (whole run) | peak RSS MiB | tokens metered |',
    '|---|---|---:|---:|---:|',
  );
  for (const g of r.gates)
    L.push(`| ${g.name} | ${g.profile} | ${n(g.cpuS)} | ${n(g.peakRssMiB)} | ${g.tokensMetered} |`);

  if (r.jwks) {
    const list = (o: Record<string, number>) =>
      Object.entries(o)
        .map(([reason, count]) => `${reason} ${count}`)
        .join(', ') || 'none';
    L.push(
      '',
      '## JWT identity: JWKS fetches (governed_jwt)',
      '',
      `During the measured run: ${list(r.jwks.fetchesDuringRun)}. In all: ${list(r.jwks.fetchesTotal)}; the issuer served ${r.jwks.served} JWKS requests. A fetch on the request path would show as unknown_kid.`,
    );
  }

  L.push('', "## Envoy's ext_proc counters", '');
  const names = [...new Set(Object.values(r.envoyCounters).flatMap((c) => Object.keys(c)))];
  L.push(`| route | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
  for (const [route, c] of Object.entries(r.envoyCounters))
    L.push(`| ${route} | ${names.map((k) => (k in c ? String(c[k]) : '–')).join(' | ')} |`);

  if (r.cpuProfile) {
    const c = r.cpuProfile;
    L.push(
      '',
      `## Where the governed gate's CPU goes (${c.rateRps} req/s for ${c.durationS} s, ${c.sampledMs} ms busy)`,
    );
    L.push('', '| self time in | % of busy |', '|---|---:|');
    for (const p of c.byPackage) L.push(`| ${p.name} | ${p.selfPct} |`);
    L.push('', '| hottest functions (self time) | location | % of busy | mostly called from |', '|---|---|---:|---|');
    for (const f of c.topFunctions) L.push(`| ${f.name} | ${f.location} | ${f.selfPct} | ${f.calledFrom} |`);
  }
  if (r.skipped.length > 0) {
    L.push('', '## Not measured', '');
    for (const k of r.skipped) L.push(`- ${k.profile}: ${k.reason}`);
  }
  L.push('', '## Method', '');
  for (const [k, v] of Object.entries(r.method)) L.push(`- ${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
  return `${L.join('\n')}\n`;
}
