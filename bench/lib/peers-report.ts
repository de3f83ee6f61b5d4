// The human-readable report beside each peers result: LM Gate and Envoy AI Gateway side by side,
// with LM Gate / AI Gateway ratios, and how AI Gateway was built and configured.
import { stringify } from 'yaml';
import { PEER_LABEL, PEERS, type PeersResult } from './peers-result.ts';
import type { Percentiles } from './stats.ts';

const n = (v: number | null) =>
  v === null || !Number.isFinite(v) ? '–' : v.toFixed(v !== 0 && Math.abs(v) < 10 ? 2 : 1);
const x = (v: number | null) => (v === null ? '–' : `${v.toFixed(2)}×`);
const p5 = (p: Percentiles) => `${n(p.p50)} | ${n(p.p90)} | ${n(p.p99)} | ${n(p.p99_9)} | ${n(p.max)}`;
const errs = (e: Record<string, number>) =>
  Object.keys(e).length === 0
    ? '0'
    : Object.entries(e)
        .map(([k, v]) => `${v} (${k})`)
        .join(', ');
const RATIO = '**LM Gate / AI Gateway**';

export function renderPeersMarkdown(r: PeersResult): string {
  const env = r.environment;
  const ag = r.aiGateway;
  const L: string[] = [];
  L.push(`# LM Gate and Envoy AI Gateway behind the same Envoy: ${r.kind} run`, '');
  if (r.kind === 'smoke')
    L.push(
      '> A smoke run: a second or two per part, to prove the harness works end to end. Its figures are not a measurement; `npm run bench:peers` on a quiet machine makes one.',
      '',
    );
  L.push(`- Command: \`${r.command}\` at commit \`${r.commit}\`, ${r.startedAt}, ${r.durationS} s`);
  L.push(`- Machine: ${env.cores} cores (${env.cpuModel}), ${env.memoryGiB} GiB, Linux ${env.kernel}`);
  L.push(
    `- Node ${env.node}; ${env.go.replace(/^go version /, '')}; Envoy ${env.envoy} (--concurrency ${env.envoyConcurrency}); vegeta ${env.vegeta}`,
  );
  L.push(
    `- AI Gateway: \`${ag.module}\` ${ag.version} (stamped \`${ag.stamp}\`), cmd/extproc ${
      ag.buildS === null
        ? 'given by AI_GATEWAY_EXTPROC_BIN'
        : ag.cached
          ? `from .cache/ (its build took ${ag.buildS} s)`
          : `built by this run in ${ag.buildS} s`
    }`,
  );
  L.push(`- Method: ${r.method.added}. ${r.method.openLoop}. Request: ${r.method.request}.`);
  L.push(`- Ratios: ${r.method.ratio}.`, '');
  L.push(`![LM Gate and AI Gateway, added latency](${r.kind === 'full' ? 'peers' : 'peers-smoke'}.svg)`, '');

  L.push('## Routes', '', '| route | what runs |', '|---|---|');
  for (const x of r.routes) L.push(`| ${x.route} | ${x.description} |`);

  L.push('', '## Both gateways are in the path and meter tokens', '');
  L.push(
    'A JSON answer and an SSE stream through a verification listener per gateway (the same filters plus an access log of Envoy dynamic metadata), before any load: the token counts each gateway wrote against the usage the client received.',
    '',
  );
  L.push(
    '| listener | request | HTTP | usage in / out / total | dynamic metadata | metered |',
    '|---|---|---:|---|---|---|',
  );
  for (const v of r.verification) {
    const md = Object.entries(v.metadata)
      .filter(([k]) => /token/.test(k))
      .map(([k, val]) => `${k}=${String(val)}`)
      .join(', ');
    L.push(
      `| ${v.route} | ${v.request} | ${v.status} | ${v.usage.input} / ${v.usage.output} / ${v.usage.total} | ${md || '–'} | ${v.metered ? 'yes' : '**no**'} |`,
    );
  }

  L.push('', '## Open loop: latency added to Envoy alone (ms)', '');
  L.push(
    '| req/s | route | requests | errors | added p50 | p90 | p99 | p99.9 | max | latency p50 / p99 | CPU ms/req |',
    '|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const o of r.openLoop) {
    L.push(
      `| ${o.rateRps} | direct | ${o.direct.requests} | ${errs(o.direct.errors)} | – | – | – | – | – | ${n(o.direct.ms.p50)} / ${n(o.direct.ms.p99)} | – |`,
    );
    for (const p of PEERS) {
      const f = o[p];
      L.push(
        `| ${o.rateRps} | ${PEER_LABEL[p]} | ${f.requests} | ${errs(f.errors)} | ${p5(f.addedMs)} | ${n(f.ms.p50)} / ${n(f.ms.p99)} | ${n(f.cpuMsPerRequest)} |`,
      );
    }
    const q = o.ratio;
    L.push(
      `| ${o.rateRps} | ${RATIO} | | | ${x(q.addedP50)} | ${x(q.addedP90)} | ${x(q.addedP99)} | | | ${x(q.latencyP50)} / ${x(q.latencyP99)} | ${x(q.cpuMsPerRequest)} |`,
    );
  }
  L.push(
    '',
    'Added = a percentile through the route minus the same percentile direct, all three routes measured in the same slices. CPU = the gateway process only (Envoy, which runs both gateways\u2019 filters, is shared).',
  );

  L.push('', '## Saturation: closed loop, each route alone', '');
  L.push('| workers | route | req/s | p50 ms | p99 ms | errors | CPU ms/req |', '|---:|---|---:|---:|---:|---:|---:|');
  for (const s of r.saturation) {
    for (const route of ['direct', ...PEERS] as const) {
      const f = s[route];
      const label = route === 'direct' ? 'direct' : PEER_LABEL[route];
      L.push(
        `| ${s.workers} | ${label} | ${f.rps} | ${n(f.p50Ms)} | ${n(f.p99Ms)} | ${f.errors} | ${n(f.cpuMsPerRequest)} |`,
      );
    }
    L.push(`| ${s.workers} | ${RATIO} | ${x(s.ratio.rps)} | | ${x(s.ratio.p99)} | | ${x(s.ratio.cpuMsPerRequest)} |`);
  }

  const st = r.streaming;
  L.push('', `## Streaming: ${st.chunks} SSE chunks, ${st.chunkDelayMs} ms apart, all routes at once`, '');
  L.push(
    '| route | streams | errors | TTFT p50 | TTFT added p50 | p90 | p99 | chunk trip p50 / p99 | added to each chunk p50 / p99 | gap p50 / p99 | total p50 | CPU ms/stream |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of st.routes) {
    const a = s.ttftAddedMs;
    const label = s.route === 'direct' ? 'direct' : PEER_LABEL[s.route as (typeof PEERS)[number]];
    L.push(
      `| ${label} | ${s.requests} | ${errs(s.errors)} | ${n(s.ttftMs.p50)} | ${a ? n(a.p50) : '–'} | ${a ? n(a.p90) : '–'} | ${a ? n(a.p99) : '–'} | ${n(s.chunkTripMs.p50)} / ${n(s.chunkTripMs.p99)} | ${s.chunkTripAddedMs ? `${n(s.chunkTripAddedMs.p50)} / ${n(s.chunkTripAddedMs.p99)}` : '–'} | ${n(s.gapMs.p50)} / ${n(s.gapMs.p99)} | ${n(s.totalMs.p50)} | ${n(s.gateCpuMsPerRequest)} |`,
    );
  }
  L.push(
    `| ${RATIO} | | | | ${x(st.ratio.ttftAddedP50)} | | | | ${x(st.ratio.chunkTripAddedP50)} | | | ${x(st.ratio.cpuMsPerStream)} |`,
  );
  L.push(
    '',
    'Both gateways read a streamed response STREAMED (one gRPC message per chunk): LM Gate by mode override from its response headers, AI Gateway likewise for a 200 stream.',
  );

  L.push(
    '',
    '## Gateway processes (whole run)',
    '',
    '| route | process | CPU s | peak RSS MiB | tokens metered |',
    '|---|---|---:|---:|---:|',
  );
  for (const p of r.processes)
    L.push(`| ${PEER_LABEL[p.route]} | ${p.process} | ${n(p.cpuS)} | ${n(p.peakRssMiB)} | ${p.tokensMetered} |`);
  L.push(`| ${RATIO} | | ${x(r.processRatio.cpuS)} | ${x(r.processRatio.peakRssMiB)} | |`);
  L.push(
    '',
    'Tokens metered: LM Gate\u2019s lmgate_tokens_total and AI Gateway\u2019s gen_ai_client_token_usage (input + output), over the whole run.',
  );

  L.push('', "## Envoy's ext_proc counters", '');
  const names = [...new Set(Object.values(r.envoyCounters).flatMap((c) => Object.keys(c)))];
  L.push(`| filter | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
  for (const [route, c] of Object.entries(r.envoyCounters))
    L.push(`| ${route} | ${names.map((k) => (k in c ? String(c[k]) : '–')).join(' | ')} |`);
  L.push(
    '',
    'AI Gateway\u2019s router-level filter asks Envoy to set `x-envoy-original-path`, which Envoy\u2019s default header-mutation rules refuse (rejected_header_mutations: one per request); its controller configures the same filter the same way, so this is how it runs in production too, and the request goes on.',
  );

  L.push('', '## How AI Gateway was built and configured', '');
  L.push('Built from its Go module (no fork, no patch):', '', '```sh');
  for (const c of ag.commands) L.push(c);
  L.push('```', '');
  L.push(
    `The version stamp is what its release Makefile sets (\`git describe --tags --long\`); the extproc loads a filter config only when the config's \`version\` equals the stamped release (${ag.version}). Its filter config in this run:`,
    '',
    '```yaml',
    stringify(ag.filterConfig).trimEnd(),
    '```',
    '',
    'Envoy: the listener is a copy of LM Gate\u2019s (same connection manager settings, access log off) with AI Gateway\u2019s router-level ext_proc filter in place of LM Gate\u2019s, the route tagged with `aigateway.envoy.io: {aigw_route_name}`, and a model cluster of its own carrying the upstream-level ext_proc filter, header_mutation (content-length) and upstream_codec, its endpoint tagged `per_route_rule_backend_name`, as its controller generates them (bench/lib/ai-gateway-envoy.ts explains each part).',
  );

  L.push('', '## Method', '');
  for (const [k, v] of Object.entries(r.method)) L.push(`- ${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
  return `${L.join('\n')}\n`;
}
