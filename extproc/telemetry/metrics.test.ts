// lmgate_policy_decisions_total: counted on the request path without prom-client's per-call
// label hashing, caught up when scraped, and bounded in its rule label.
import { describe, expect, it } from 'vitest';
import { MAX_RULE_LABELS, Metrics } from './metrics.ts';

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
