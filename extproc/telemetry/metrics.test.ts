// lmgate_policy_decisions_total: counted on the request path without prom-client's per-call
// label hashing, caught up when scraped, and bounded in its rule label.
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../pipeline/context.ts';
import { MAX_MODEL_LABELS, MAX_RULE_LABELS, MAX_TENANT_LABELS, Metrics } from './metrics.ts';

const series = async (m: Metrics) =>
  (await m.registry.getSingleMetricAsString('lmgate_policy_decisions_total'))
    .split('\n')
    .filter((l) => l.startsWith('lmgate_policy_decisions_total{'));

describe('policy decisions counter', () => {
  it('counts by rule and effect, across scrapes', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.countPolicyDecision('policy.rules.a', 'allow');
    m.countPolicyDecision('policy.rules.a', 'allow');
    m.countPolicyDecision('policy.rules.a', 'deny');
    expect(await series(m)).toEqual([
      'lmgate_policy_decisions_total{rule="policy.rules.a",effect="allow"} 2',
      'lmgate_policy_decisions_total{rule="policy.rules.a",effect="deny"} 1',
    ]);
    m.countPolicyDecision('policy.rules.a', 'deny');
    expect(await series(m)).toContain('lmgate_policy_decisions_total{rule="policy.rules.a",effect="deny"} 2');
  });

  it(`keeps ${MAX_RULE_LABELS} rule ids; later ones count as "other"`, async () => {
    const m = new Metrics({ defaultMetrics: false });
    for (let i = 0; i <= MAX_RULE_LABELS; i++) m.countPolicyDecision(`opa.rule-${i}`, 'deny');
    m.countPolicyDecision('opa.rule-0', 'deny');
    const lines = await series(m);
    expect(lines).toHaveLength(MAX_RULE_LABELS + 1);
    expect(lines).toContain('lmgate_policy_decisions_total{rule="other",effect="deny"} 1');
    expect(lines).toContain('lmgate_policy_decisions_total{rule="opa.rule-0",effect="deny"} 2');
  });
});

describe('token and cost counters by tenant and model', () => {
  const ctx = (tenant: string, model: string) =>
    ({
      principal: { tenant },
      modelRequested: model,
      usage: { inputTokens: 2, outputTokens: 3, totalTokens: 5, source: 'upstream' },
    }) as unknown as RequestContext;
  const lines = async (m: Metrics, name: string) =>
    (await m.registry.getSingleMetricAsString(name)).split('\n').filter((l) => l.startsWith(`${name}{`));

  it(`keep ${MAX_TENANT_LABELS} tenants and ${MAX_MODEL_LABELS} models; later ones count as "other"`, async () => {
    const m = new Metrics({ defaultMetrics: false });
    // every request a new tenant and a new model, far past both bounds
    for (let i = 0; i < 1000; i++) m.countCost(ctx(`tenant-${i}`, `model-${i}`), { amount: 1, currency: 'USD' });
    const cost = await lines(m, 'lmgate_cost_total');
    const tenants = new Set(cost.map((l) => /tenant="([^"]*)"/.exec(l)![1]));
    const models = new Set(cost.map((l) => /model="([^"]*)"/.exec(l)![1]));
    expect(tenants.size).toBe(MAX_TENANT_LABELS + 1);
    expect(models.size).toBe(MAX_MODEL_LABELS + 1);
    expect(tenants.has('other') && models.has('other')).toBe(true);
    // nothing is lost to the bound: the totals are all 1000 requests'
    const total = (ls: string[]) => ls.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    expect(total(cost)).toBe(1000);
    const tokens = await lines(m, 'lmgate_tenant_tokens_total');
    expect(tokens.length).toBeLessThanOrEqual(2 * (MAX_TENANT_LABELS + 1) * (MAX_MODEL_LABELS + 1));
    expect(total(tokens)).toBe(5000);
  });

  it("a body's DLP findings count once per type and action, interleaved or not", async () => {
    const m = new Metrics({ defaultMetrics: false });
    const f = (type: string, action: string) => ({ type, action });
    m.countDlpFindings(
      [
        f('EMAIL', 'redact'),
        f('CREDIT_CARD', 'redact'),
        f('EMAIL', 'redact'),
        f('EMAIL', 'mask'),
        f('CREDIT_CARD', 'redact'),
      ],
      'request',
    );
    m.countDlpFindings([f('EMAIL', 'redact')], 'response');
    m.countDlpFindings([], 'response');
    const text = await m.registry.getSingleMetricAsString('lmgate_dlp_findings_total');
    const series = text.split('\n').filter((l) => l.startsWith('lmgate_dlp_findings_total{'));
    expect(series.sort()).toEqual([
      'lmgate_dlp_findings_total{type="CREDIT_CARD",action="redact",where="request"} 2',
      'lmgate_dlp_findings_total{type="EMAIL",action="mask",where="request"} 1',
      'lmgate_dlp_findings_total{type="EMAIL",action="redact",where="request"} 2',
      'lmgate_dlp_findings_total{type="EMAIL",action="redact",where="response"} 1',
    ]);
  });
});
