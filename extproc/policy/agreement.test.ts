// The gate and `lm-gate policy explain` / `policy test` must agree: the shipped test table
// (examples/policy-test.yaml, over examples/lm-gate.yaml) runs through the gate's stages (runStage:
// the real pipeline and state machine, each row's request sent as Envoy would send it) and
// through the evaluator the CLI uses, and every row must get the same effect from the same rule.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../test/harness/run-stage.ts';
import { loadConfigFile } from '../config/load.ts';
import { RoutingTable } from '../routing/table.ts';
import type { ResolvedRequest } from './describe.ts';
import { PolicyEngine } from './engine.ts';
import { decidingVerdict, type ExplainContext, explain } from './explain.ts';
import { parseTable } from './test-table.ts';

// The example's hipaa route sends the model server's key from here (the gate reads it; explain
// does not need it).
process.env.VLLM_HIPAA_API_KEY ??= 'test-hipaa-key';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const config = await loadConfigFile(join(EXAMPLES, 'lm-gate.yaml'), {});
const TABLE = join(EXAMPLES, 'policy-test.yaml');
const cases = parseTable(readFileSync(TABLE, 'utf8'), TABLE, config);
/** When a row gives no time: any fixed instant, the same for both. */
const NOW = Date.parse('2026-03-04T12:00:00Z');

/** The HTTP request a client would send for the row, as the gate receives it. */
function httpRequest(r: ResolvedRequest): { method: string; path: string; body?: Record<string, unknown> } {
  if (!r.bodyFollows) return { method: r.method, path: r.path };
  if (r.endpoint.startsWith('tgi.'))
    return {
      method: r.method,
      path: r.path,
      body: { inputs: 'hello', ...(r.maxTokens === undefined ? {} : { parameters: { max_new_tokens: r.maxTokens } }) },
    };
  const body: Record<string, unknown> = { model: r.model, stream: r.stream };
  const ollama = r.endpoint.startsWith('ollama.');
  if (r.endpoint.endsWith('.chat')) body.messages = [{ role: 'user', content: 'hello' }];
  else if (r.endpoint.endsWith('embeddings') || r.endpoint.endsWith('.embed')) body.input = 'hello';
  else body.prompt = 'hello';
  if (r.maxTokens !== undefined) {
    if (ollama) body.options = { num_predict: r.maxTokens };
    else body.max_tokens = r.maxTokens;
  }
  return { method: r.method, path: r.path, body };
}

describe(`the gate and policy explain agree on every row of examples/policy-test.yaml`, () => {
  const ctx: ExplainContext = {
    engine: new PolicyEngine(config),
    allowUnknown: config.policy.unknownEndpoints === 'allow',
    stages: new Set(config.pipeline.stages),
    routing: new RoutingTable(config, { readCredentials: false }),
    defaultMaxTokens: config.policy.defaultMaxTokens,
    now: () => NOW,
  };
  it('has rows', () => expect(cases.length).toBeGreaterThan(10));
  for (const c of cases) {
    it(c.name, async () => {
      const explained = await explain(ctx, c.principal, c.request);
      const now = c.request.nowMs ?? NOW;
      const run = await runStage({
        // Identity is given (the row's principal); every other stage the config runs.
        stages: config.pipeline.stages.filter((s) => s !== 'identity.authenticate'),
        config: config as unknown as Record<string, unknown>,
        given: {
          principal: c.principal,
          ...(c.request.dataClasses.size > 0 ? { dataClasses: [...c.request.dataClasses] } : {}),
          // Routing chooses the route when the config has routes; a row gives one only without.
          ...(c.request.route && config.routing.routes.length === 0 ? { route: c.request.route } : {}),
        },
        clock: { now: () => now },
        request: httpRequest(c.request),
      });
      const gate = run.refused
        ? { effect: 'deny', rule: run.refused.ruleId }
        : {
            effect: 'allow',
            rule: decidingVerdict(run.audit.decisions.map((d) => ({ ...d, ruleId: d.rule_id })))?.ruleId,
          };
      expect(gate).toEqual({ effect: explained.effect, rule: explained.decidedBy?.ruleId });
      // And both agree with the row.
      expect(gate.effect).toBe(c.expect);
    });
  }
});
