// lm-gate policy explain | test: the policy evaluator the gate runs, on a request described on
// the command line or in a table, without a gate, a credential or a model server.
//   lm-gate policy explain -c CONFIG (--principal JSON | --key-id ID) --request JSON [--json]
//   lm-gate policy test -c CONFIG [-v] FILE
// A usage mistake exits 2, a bad config or table 1 (one line each), a failed expectation 1.

import { readFile } from 'node:fs/promises';
import { ConfigError, loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { DescriptionError, keyPrincipal, parsePrincipal, parseRequest } from '../policy/describe.ts';
import { PolicyEngine } from '../policy/engine.ts';
import { type ExplainContext, explain } from '../policy/explain.ts';
import { formatExplanation } from '../policy/explain-text.ts';
import { parseTable, runTable, TableError } from '../policy/test-table.ts';
import { RoutingTable } from '../routing/table.ts';
import { parseCommandArgs, UsageError } from './usage.ts';

export const POLICY_EXPLAIN = 'lm-gate policy explain -c FILE (--principal JSON | --key-id ID) --request JSON [--json]';
export const POLICY_TEST = 'lm-gate policy test -c FILE [-v] TABLE';
const USAGE = `${POLICY_EXPLAIN}\n  ${POLICY_TEST}`;
const help = { type: 'boolean', short: 'h' } as const;

export async function policyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'explain':
      return explainCommand(rest);
    case 'test':
      return testCommand(rest);
    case '--help':
    case '-h':
      console.log(`usage:\n  ${USAGE}`);
      return 0;
    default:
      throw new UsageError('lm-gate policy', 'expected "policy explain" or "policy test"', USAGE);
  }
}

function contextFor(config: Config): ExplainContext {
  return {
    engine: new PolicyEngine(config),
    allowUnknown: config.policy.unknownEndpoints === 'allow',
    stages: new Set(config.pipeline.stages),
    routing: config.pipeline.stages.includes('routing.route')
      ? new RoutingTable(config, { readCredentials: false })
      : undefined,
    tgiModel: config.routing.tgiModel,
    defaultMaxTokens: config.policy.defaultMaxTokens,
    now: Date.now,
  };
}

function json(cmd: string, option: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(cmd, `${option} is not JSON`, POLICY_EXPLAIN);
  }
}

async function explainCommand(args: string[]): Promise<number> {
  const cmd = 'lm-gate policy explain';
  const { values } = parseCommandArgs(cmd, POLICY_EXPLAIN, {
    args,
    options: {
      help,
      config: { type: 'string', short: 'c' },
      principal: { type: 'string' },
      'key-id': { type: 'string' },
      request: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(`usage: ${POLICY_EXPLAIN}`);
    return 0;
  }
  if (!values.config) throw new UsageError(cmd, '-c FILE is required', POLICY_EXPLAIN);
  if ((values.principal === undefined) === (values['key-id'] === undefined))
    throw new UsageError(cmd, 'give the caller with --principal or --key-id (one of them)', POLICY_EXPLAIN);
  if (values.request === undefined) throw new UsageError(cmd, '--request is required', POLICY_EXPLAIN);
  const principalJson = values.principal === undefined ? undefined : json(cmd, '--principal', values.principal);
  const requestJson = json(cmd, '--request', values.request);
  const config = await loadConfigFile(values.config);
  let principal: ReturnType<typeof parsePrincipal>;
  let request: ReturnType<typeof parseRequest>;
  try {
    principal = values['key-id'] !== undefined ? keyPrincipal(config, values['key-id']) : parsePrincipal(principalJson);
    request = parseRequest(requestJson);
  } catch (err) {
    if (err instanceof DescriptionError) throw new UsageError(cmd, err.message);
    throw err;
  }
  const e = await explain(contextFor(config), principal, request);
  if (values.json) {
    const { request: _r, principal: _p, ...rest } = e;
    console.log(
      JSON.stringify({
        effect: e.effect,
        rule_id: e.decidedBy?.ruleId ?? null,
        decided_at: e.decidedAt,
        decisions: rest.decisions,
        steps: rest.steps,
      }),
    );
  } else console.log(formatExplanation(e));
  return 0;
}

async function testCommand(args: string[]): Promise<number> {
  const cmd = 'lm-gate policy test';
  const { values, positionals } = parseCommandArgs(cmd, POLICY_TEST, {
    args,
    allowPositionals: true,
    options: { help, config: { type: 'string', short: 'c' }, verbose: { type: 'boolean', short: 'v' } },
  });
  if (values.help) {
    console.log(`usage: ${POLICY_TEST}`);
    return 0;
  }
  if (!values.config) throw new UsageError(cmd, '-c FILE is required', POLICY_TEST);
  if (positionals.length !== 1) throw new UsageError(cmd, 'one TABLE file', POLICY_TEST);
  const file = positionals[0]!;
  const config = await loadConfigFile(values.config);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw ConfigError.unreadable(file, err);
  }
  let cases: ReturnType<typeof parseTable>;
  try {
    cases = parseTable(text, file, config);
  } catch (err) {
    if (err instanceof TableError) throw new ConfigError(file, err.problems, err.message);
    throw err;
  }
  const results = await runTable(contextFor(config), cases);
  let failed = 0;
  for (const r of results) {
    if (r.failure === undefined) {
      if (values.verbose) console.log(`ok    ${r.case.name}`);
      continue;
    }
    failed++;
    console.log(`FAIL  ${r.case.name}: ${r.failure}`);
    for (const line of formatExplanation(r.explanation).split('\n')) console.log(line ? `      ${line}` : '');
  }
  console.log(
    `${file}: ${results.length} cases, ${failed === 0 ? 'all passed' : `${failed} failed, ${results.length - failed} passed`}`,
  );
  return failed === 0 ? 0 : 1;
}
