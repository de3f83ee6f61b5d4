// A large audit log for measuring `lm-gate audit query` and `audit verify`: N records (default
// 1,000,000) in the exact shape the gate writes (schema 2, chained and checkpointed, unsigned),
// spread over 60 days, 8 tenants, 4 routes, a few models; about 1% carry a DLP finding of data
// class phi, 5% a policy refusal. Deterministic (a fixed PRNG seed).
//
//   node scripts/audit-million.ts OUT.jsonl [N]
import { createWriteStream } from 'node:fs';
import { Chain } from '../extproc/audit/chain.ts';
import { checkpointLine } from '../extproc/audit/checkpoint.ts';

const [out, count = '1000000'] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/audit-million.ts OUT.jsonl [N]');
  process.exit(2);
}
const n = Number(count);
let seed = 42;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const tenants = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
const teams = ['claims', 'research', 'support', 'finance'];
const routes = ['default', 'hipaa', 'eu', 'large'];
const models = ['gpt-4o', 'llama-3.1-8b', 'mistral-small', 'claude-3-haiku'];
const start = Date.parse('2026-09-01T00:00:00Z');
const span = 60 * 86_400_000;

const file = createWriteStream(out);
const chain = new Chain();
let lastCheckpoint: string | null = null;
let since = 0;
const write = (s: string) => (file.write(s) ? undefined : new Promise<void>((r) => file.once('drain', () => r())));
const checkpoint = async (reason: 'open' | 'count' | 'shutdown', ms: number) => {
  const line = await checkpointLine(
    chain,
    { time: new Date(ms).toISOString(), reason, file: 'audit.log', records: since, prev_checkpoint: lastCheckpoint },
    undefined,
  );
  chain.commit(line);
  lastCheckpoint = chain.prev;
  since = 0;
  await write(`${line}\n`);
};

const t0 = performance.now();
await checkpoint('open', start);
for (let i = 0; i < n; i++) {
  const ms = start + Math.floor((i / n) * span);
  const tenant = pick(tenants);
  const refused = rand() < 0.05;
  const phi = rand() < 0.01;
  const model = pick(models);
  const input = Math.floor(rand() * 2000);
  const output = Math.floor(rand() * 500);
  const record = {
    schema_version: 2,
    time: new Date(ms).toISOString(),
    request_id: `req-${i.toString(36)}`,
    principal: {
      id: `${tenant}-key-${i % 17}`,
      key_id: `${tenant}-key-${i % 17}`,
      tenant,
      team: pick(teams),
      user: `user-${i % 311}`,
      roles: ['member'],
      method: 'api_key',
      issuer: 'config',
    },
    endpoint: { method: 'POST', path: '/v1/chat/completions', api: 'openai.chat' },
    gen_ai: {
      operation: { name: 'chat' },
      request: { model, max_tokens: null },
      response: { model: refused ? null : model },
      usage: refused ? null : { input_tokens: input, output_tokens: output },
    },
    upstream_model: model,
    route: pick(routes),
    stream: rand() < 0.5,
    status: refused ? 403 : 200,
    outcome: refused ? 'rejected' : 'completed',
    error: refused
      ? { code: 'policy_denied', type: 'permission_error', status: 403, rule_id: 'policy.rules.no-long-generations' }
      : null,
    failure: null,
    latency_ms: { total: 412.5, gate: 0.412, upstream: 410.1, phases: { request_headers: 0.1, request_body: 0.3 } },
    bytes: { request: 512, response: 2048 },
    metering: refused ? { total_tokens: null, source: null } : { total_tokens: input + output, source: 'upstream' },
    decisions: [
      {
        stage: 'policy.rules',
        rule_id: refused ? 'policy.rules.no-long-generations' : 'policy.rules.default-allow',
        effect: refused ? 'deny' : 'allow',
        reason: 'every part matched',
      },
    ],
    ...(phi ? { dlp: { findings: [{ type: 'MRN', count: 1 }], data_classes: ['phi'] } } : {}),
  };
  const p = write(`${chain.link('request', JSON.stringify(record))}\n`);
  since++;
  if (p) await p;
  if (since >= 10_000) await checkpoint('count', ms);
}
await checkpoint('shutdown', start + span);
await new Promise<void>((r) => file.end(r));
console.log(`${out}: ${n} records in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
