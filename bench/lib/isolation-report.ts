// Figures and tables for `npm run bench:isolation`: per-tenant latency and status counts of each
// slice, the same pooled per phase, and the victim's loaded p99 over its unloaded p99.
import type { BodyId } from './isolation-bodies.ts';
import { mapValues, type Percentiles, percentiles, roundMs } from './stats.ts';
import type { Sample } from './vegeta.ts';

export type Phase = 'unloaded' | BodyId;

export interface TenantStats {
  requests: number;
  /** Over every request, failed ones included (a 504 counts with the time it took). */
  ms: Percentiles;
  /** "2xx", an HTTP status ("504") or vegeta's error ("timeout…"). */
  statuses: Record<string, number>;
}

export interface AttackerStats extends TenantStats {
  /** Requests answered per second over the attacker's whole run (before, during and after the
   * victim's window). */
  rps: number;
}

export interface Slice {
  phase: Phase;
  round: number;
  victim: TenantStats;
  /** The victim's p99 over the pooled unloaded p99. */
  p99Ratio: number | null;
  attacker?: AttackerStats;
  /** Attacker requests the gate let through to the sink upstream. */
  attackerReachedUpstream?: number;
  gate: { cpuS: number; loopMaxMs: number };
  envoyCpuS: number;
  /** Envoy's counter increases during the slice, per listener. */
  envoy: Record<string, number>;
  load1: number;
}

export interface Summary {
  phase: Phase;
  slices: number;
  victim: TenantStats;
  p99Ratio: number | null;
  attacker?: AttackerStats;
}

export interface Probe {
  status: string;
  ms: number;
}

export interface BodyInfo {
  id: BodyId;
  description: string;
  bytes: number;
  depth: number;
  /** The body sent alone, one request at a time, before any load. */
  alone: Probe[];
}

export function statusOf(s: Sample): string {
  if (s.ok) return '2xx';
  // attack() writes "HTTP 504"; vegeta itself reports 4xx/5xx as "504 Gateway Timeout".
  const e = s.error ?? 'failed';
  return /^(?:HTTP )?(\d{3})\b/.exec(e)?.[1] ?? e;
}

export function tenantStats(samples: Sample[]): TenantStats {
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[statusOf(s)] = (statuses[statusOf(s)] ?? 0) + 1;
  return { requests: samples.length, ms: mapValues(percentiles(samples.map((s) => s.ms)), roundMs), statuses };
}

export function ratio(p99: number, base: number | undefined): number | null {
  if (base === undefined || !Number.isFinite(p99) || !Number.isFinite(base) || base <= 0) return null;
  return Math.round((p99 / base) * 100) / 100;
}

const n = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? '–'
    : v.toFixed(Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0);
export const statusText = (s: Record<string, number> | undefined) =>
  s === undefined
    ? '–'
    : Object.entries(s)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k}×${v}`)
        .join(' ');
const lat = (t: TenantStats) => `${n(t.ms.p50)} | ${n(t.ms.p90)} | ${n(t.ms.p99)} | ${n(t.ms.max)}`;

export function summaryTable(rows: Summary[]): string[] {
  const L = [
    '| victim under | slices | victim req | p50 ms | p90 ms | p99 ms | max ms | p99 / unloaded p99 | victim statuses | attacker req/s | attacker p50 / p99 ms | attacker statuses |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|',
  ];
  for (const r of rows) {
    const a = r.attacker;
    L.push(
      `| ${r.phase === 'unloaded' ? 'no attacker' : `attacker ${r.phase}`} | ${r.slices} | ${r.victim.requests} | ${lat(r.victim)} | ${r.phase === 'unloaded' ? '1' : n(r.p99Ratio)} | ${statusText(r.victim.statuses)} | ${a ? n(a.rps) : '–'} | ${a ? `${n(a.ms.p50)} / ${n(a.ms.p99)}` : '–'} | ${statusText(a?.statuses)} |`,
    );
  }
  return L;
}

export function sliceTable(slices: Slice[]): string[] {
  const L = [
    '| # | round | victim under | victim p50 / p90 / p99 / max ms | p99 ratio | victim statuses | attacker req (to upstream) | attacker statuses | gate loop max ms | gate CPU s | Envoy CPU s | Envoy ext_proc timeouts victim / attacker | load1 |',
    '|---:|---:|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|',
  ];
  slices.forEach((s, i) => {
    const v = s.victim.ms;
    L.push(
      `| ${i + 1} | ${s.round} | ${s.phase} | ${n(v.p50)} / ${n(v.p90)} / ${n(v.p99)} / ${n(v.max)} | ${n(s.p99Ratio)} | ${statusText(s.victim.statuses)} | ${s.attacker ? `${s.attacker.requests} (${s.attackerReachedUpstream ?? 0})` : '–'} | ${statusText(s.attacker?.statuses)} | ${n(s.gate.loopMaxMs)} | ${n(s.gate.cpuS)} | ${n(s.envoyCpuS)} | ${s.envoy['victim.message_timeouts'] ?? 0} / ${s.envoy['attacker.message_timeouts'] ?? 0} | ${n(s.load1)} |`,
    );
  });
  return L;
}

export function bodyTable(bodies: BodyInfo[]): string[] {
  const L = ['| body | bytes | depth | alone: status, ms | what |', '|---|---:|---:|---|---|'];
  for (const b of bodies) {
    const alone = b.alone.map((p) => `${p.status} ${n(p.ms)}`).join(', ');
    L.push(`| ${b.id} | ${b.bytes} | ${b.depth} | ${alone} | ${b.description.replace(/\|/g, '\\|')} |`);
  }
  return L;
}

export interface IsolationResult {
  schema: 'lm-gate-isolation/1';
  kind: 'full' | 'smoke';
  startedAt: string;
  durationS: number;
  command: string;
  commit: string;
  environment: Record<string, string | number>;
  method: Record<string, string | number>;
  bodies: BodyInfo[];
  summary: Summary[];
  slices: Slice[];
}

export function renderIsolationMarkdown(r: IsolationResult): string {
  const e = r.environment;
  const m = r.method;
  const L: string[] = [];
  L.push(`# LM Gate tenant isolation: ${r.kind} run`, '');
  L.push(`- Command: \`${r.command}\` at commit \`${r.commit}\`, ${r.startedAt}, ${r.durationS} s`);
  L.push(
    `- Machine: ${e.cores} cores (${e.cpuModel}), load average ${e.loadStart} at start, ${e.loadEnd} at end; Node ${e.node}, Envoy ${e.envoy} (--concurrency ${e.envoyConcurrency}), vegeta ${e.vegeta}`,
  );
  L.push(`- Victim: ${m.victim}`);
  L.push(`- Attacker: ${m.attacker}`);
  if (m.limits !== undefined) L.push(`- Limits: ${m.limits}`);
  L.push(`- Slices: ${m.slices}`);
  L.push(`- Latency: ${m.latency}`, '');
  L.push('## Victim latency and status counts per phase (slices pooled)', '', ...summaryTable(r.summary), '');
  L.push('## Attacker bodies', '', ...bodyTable(r.bodies), '');
  L.push('## Every slice, in the order run', '', ...sliceTable(r.slices), '');
  L.push(
    'Gate loop max: the gate\u2019s longest event-loop delay in the slice (lmgate_nodejs_eventloop_lag_max_seconds). Envoy ext_proc timeouts: message_timeouts on each listener (Envoy answered 504 because the gate did not answer within message_timeout).',
    '',
  );
  return L.join('\n');
}
