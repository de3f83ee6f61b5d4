// The Grafana dashboard and the Prometheus alert rules we ship read only metrics the gate exports:
// every metric name in their queries is compared with the # TYPE lines of a running gate's
// /metrics (with Redis configured, so the Redis and shared kill switch metrics are there too).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Gate, makeKey, startGate } from '../harness/gate.ts';
import { CHART } from '../harness/helm.ts';
import { exportedFamilies, familyOf, promqlMetricNames } from '../harness/promql-names.ts';
import { type Redis, startRedis } from '../harness/redis.ts';

type Json = Record<string, any>;

let redis: Redis;
let gate: Gate;
let exported: Set<string>;

beforeAll(async () => {
  redis = await startRedis();
  gate = await startGate([makeKey('dash')], { extra: { redis: { url: redis.url } } });
  exported = exportedFamilies(await gate.metrics());
});

afterAll(async () => {
  await gate?.stop();
  await redis?.stop();
});

async function dashboardQueries(): Promise<{ where: string; expr: string }[]> {
  const dash = JSON.parse(await readFile(join(CHART, 'files', 'grafana-dashboard.json'), 'utf8')) as Json;
  const out: { where: string; expr: string }[] = [];
  for (const p of dash.panels as Json[])
    for (const t of (p.targets ?? []) as Json[]) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  for (const v of dash.templating.list as Json[]) {
    if (v.type !== 'query') continue;
    // Grafana's label_values(metric, label): the metric is its first argument.
    const m = /^label_values\(\s*([^,]+),/.exec(v.query);
    out.push({ where: `variable ${v.name}`, expr: m ? (m[1] as string) : v.query });
  }
  return out;
}

async function alertQueries(): Promise<{ where: string; expr: string }[]> {
  const rules = parse(await readFile(join(CHART, 'files', 'prometheus-rules.yaml'), 'utf8')) as Json;
  return (rules.groups as Json[]).flatMap((g) =>
    (g.rules as Json[]).map((r) => ({ where: `alert ${r.alert ?? r.record}`, expr: r.expr as string })),
  );
}

/** Each query's metric names the gate does not export. */
function unknownNames(queries: { where: string; expr: string }[]): string[] {
  return queries.flatMap(({ where, expr }) =>
    promqlMetricNames(expr)
      .filter((n) => !exported.has(familyOf(n, exported)))
      .map((n) => `${where}: ${n}`),
  );
}

describe('observability assets against a running gate`s /metrics', () => {
  it('the scrape has the gate`s own families (a sanity check of the comparison)', () => {
    for (const f of ['lmgate_requests_total', 'lmgate_phase_duration_seconds', 'lmgate_redis_connected'])
      expect(exported).toContain(f);
  });

  it('every dashboard query reads only exported metrics, and the dashboard covers the gate`s main families', async () => {
    const qs = await dashboardQueries();
    expect(qs.length).toBeGreaterThan(15);
    expect(unknownNames(qs)).toEqual([]);
    const used = new Set(qs.flatMap((q) => promqlMetricNames(q.expr).map((n) => familyOf(n, exported))));
    for (const f of [
      'lmgate_requests_total',
      'lmgate_policy_decisions_total',
      'lmgate_tokens_total',
      'lmgate_tenant_tokens_total',
      'lmgate_cost_total',
      'lmgate_phase_duration_seconds',
      'lmgate_audit_pending_bytes',
      'lmgate_audit_write_errors_total',
      'lmgate_audit_refusals_summarised_total',
      'lmgate_budget_used_ratio',
    ])
      expect(used).toContain(f);
  });

  it('the alert rules cover gate errors, latency, budget thresholds and audit sink trouble', async () => {
    const qs = await alertQueries();
    const reads = (f: string) => qs.filter((q) => promqlMetricNames(q.expr).some((n) => familyOf(n, exported) === f));
    expect(reads('lmgate_requests_total').some((q) => q.expr.includes('outcome="error"'))).toBe(true);
    expect(reads('lmgate_phase_duration_seconds')).not.toEqual([]);
    expect(reads('lmgate_budget_used_ratio')).not.toEqual([]);
    expect(reads('lmgate_audit_write_errors_total')).not.toEqual([]);
    expect(reads('lmgate_audit_pending_bytes')).not.toEqual([]);
  });

  it('every alert rule reads only exported metrics', async () => {
    const qs = await alertQueries();
    expect(qs.length).toBeGreaterThan(10);
    expect(unknownNames(qs)).toEqual([]);
  });

  it('a query naming a metric the gate does not export is caught (the check can fail)', () => {
    expect(
      unknownNames([
        { where: 'typo', expr: 'sum by (tenant) (rate(lmgate_request_total{outcome="error"}[5m]))' },
        { where: 'foreign', expr: 'up{job="lm-gate"} == 0 and on(instance) lmgate_streams_active' },
      ]),
    ).toEqual(['typo: lmgate_request_total', 'foreign: up']);
  });
});
