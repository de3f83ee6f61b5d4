// The audit writer's cost per record, per durability mode: the single writer (FileAuditSink)
// fed the way the gate feeds it, `concurrency` requests in flight, each writing one ~1 KB record
// and (strict) waiting for it to be durable before its next. Reports records/s, CPU per record
// on the writer's thread, and the wait for durability; plus what linking into the chain (one
// SHA-256 per line) and serialising cost alone. Run it on the disk the audit will live on:
//
//   node scripts/audit-bench.ts DIR [records=20000] [concurrency=32]
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { Chain } from '../extproc/audit/chain.ts';
import type { Durability } from '../extproc/audit/config.ts';
import type { AuditRecord } from '../extproc/audit/record.ts';
import { FileAuditSink } from '../extproc/audit/sink.ts';
import { Metrics } from '../extproc/telemetry/metrics.ts';

const [dirArg, nArg = '20000', cArg = '32'] = process.argv.slice(2);
if (!dirArg) {
  console.error('usage: node scripts/audit-bench.ts DIR [records] [concurrency]');
  process.exit(2);
}
const n = Number(nArg);
const concurrency = Number(cArg);

const record = (i: number) =>
  ({
    schema_version: 2,
    time: new Date().toISOString(),
    request_id: `6f1c2a4e-8d2b-4c3e-9a7f-${String(i).padStart(12, '0')}`,
    principal: {
      id: 'claims-bot',
      key_id: 'claims-bot',
      tenant: 'acme',
      team: 'claims',
      user: 'svc-claims',
      roles: ['member'],
      method: 'api_key',
      issuer: 'config',
    },
    endpoint: { method: 'POST', path: '/v1/chat/completions', api: 'openai.chat' },
    gen_ai: {
      operation: { name: 'chat' },
      request: { model: 'llama-3.1-8b', max_tokens: 512 },
      response: { model: 'llama-3.1-8b-instruct' },
      usage: { input_tokens: 1234, output_tokens: 321 },
    },
    upstream_model: 'llama-3.1-8b-instruct',
    route: 'hipaa',
    stream: true,
    status: 200,
    outcome: 'completed',
    error: null,
    failure: null,
    latency_ms: {
      total: 812.345,
      gate: 0.512,
      upstream: 120.5,
      phases: { request_headers: 0.101, request_body: 0.302, response_headers: 0.05, response_body: 0.059 },
    },
    bytes: { request: 2345, response: 6789 },
    metering: { total_tokens: 1555, source: 'upstream' },
    decisions: [
      { stage: 'policy.rules', rule_id: 'policy.rules.claims-llama', effect: 'allow', reason: 'every part matched' },
    ],
  }) as unknown as AuditRecord;

// Linking and serialising alone.
{
  const chain = new Chain();
  const lines = Array.from({ length: 10_000 }, (_, i) => JSON.stringify(record(i)));
  const t0 = performance.now();
  for (const l of lines) chain.link('request', l);
  const link = ((performance.now() - t0) * 1000) / lines.length;
  const recs = Array.from({ length: 10_000 }, (_, i) => record(i));
  const t1 = performance.now();
  for (const r of recs) JSON.stringify(r);
  const ser = ((performance.now() - t1) * 1000) / recs.length;
  console.log(
    `record ${lines[0]!.length} B: JSON.stringify ${ser.toFixed(2)} µs, chain link (SHA-256 + splice) ${link.toFixed(2)} µs`,
  );
}

// The first round warms the JIT up and is not reported.
for (const [round, durability] of (['none', 'none', 'interval', 'strict'] as Durability[]).entries()) {
  const dir = await mkdtemp(join(dirArg, 'audit-bench-'));
  const metrics = new Metrics({ defaultMetrics: false });
  const sink = new FileAuditSink({
    path: join(dir, 'audit.log'),
    maxPendingBytes: 64 << 20,
    logger: pino({ level: 'silent' }),
    metrics,
    durability,
    fsyncIntervalMs: 1000,
  });
  await sink.open();
  let next = 0;
  let waited = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const start = performance.now();
      await new Promise<void>((resolve) => sink.write(record(i), resolve));
      waited += performance.now() - start;
      // The next request of this "connection" arrives on a later turn.
      await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await sink.flush();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await sink.close();
  const fsyncs = /lmgate_audit_fsync_seconds_count (\d+)/.exec(
    await metrics.registry.getSingleMetricAsString('lmgate_audit_fsync_seconds'),
  )?.[1];
  if (round > 0)
    console.log(
      `${durability.padEnd(8)} ${((n / ms) * 1000).toFixed(0).padStart(7)} records/s  CPU ${((cpu.user + cpu.system) / n).toFixed(1)} µs/record  wait until done ${(waited / n).toFixed(3)} ms/record  fsyncs ${fsyncs}`,
    );
  await rm(dir, { recursive: true });
}
