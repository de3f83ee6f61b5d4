// server.workers: 2 through real Envoy, its lm_gate cluster one endpoint per worker
// (LEAST_REQUEST). Both workers serve; every request leaves exactly one whole audit line in the
// one file; /metrics sums both workers; a reload reaches both; SIGTERM drains both.
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { gateConfig, makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme' });
const carol = makeKey('carol', { tenant: 'initech' });
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const openai = (s: Stack, key: string) => new OpenAI({ baseURL: s.baseURL, apiKey: key, maxRetries: 0 });

/** Envoy's requests per lm_gate endpoint, from its admin /clusters. */
async function requestsPerWorker(s: Stack): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${s.envoy.ports.admin}/clusters`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^lm_gate::127\.0\.0\.1:(\d+)::rq_total::(\d+)$/gm))
    out.set(Number(m[1]), Number(m[2]));
  return out;
}

async function chat(s: Stack, key: string, i: number): Promise<number> {
  const client = openai(s, key);
  if (i % 2 === 0) {
    const r = await client.chat.completions.create({
      model: 'mock-small',
      messages: [{ role: 'user', content: `json ${i}` }],
    });
    return r.usage?.completion_tokens ?? -1;
  }
  const stream = await client.chat.completions.create({
    model: 'mock-small',
    messages: [{ role: 'user', content: `stream ${i}` }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let tokens = -1;
  for await (const c of stream) if (c.usage) tokens = c.usage.completion_tokens;
  return tokens;
}

describe('gate workers', () => {
  it('two workers serve through Envoy, with one audit file, summed metrics, reload and drain', async () => {
    stack = await startStack({ keys: [alice], workers: 2, mock: { chunks: 5, chunkDelayMs: 5 } });
    const s = stack;
    const ports = [s.gate.grpcPort, s.gate.grpcPort + 1];

    // 60 requests, 12 at a time, half of them streams.
    const results: number[] = [];
    for (let batch = 0; batch < 5; batch++)
      results.push(...(await Promise.all(Array.from({ length: 12 }, (_, i) => chat(s, alice.key, batch * 12 + i)))));
    expect(results.every((t) => t > 0)).toBe(true);

    const perWorker = await requestsPerWorker(s);
    // Health checks are not in rq_total; each worker took a share of the 60 streams.
    expect([...perWorker.keys()].sort()).toEqual(ports);
    for (const p of ports) expect(perWorker.get(p)).toBeGreaterThanOrEqual(10);
    expect(ports.reduce((n, p) => n + perWorker.get(p)!, 0)).toBe(60);

    // Exactly one whole JSON line per request in the one audit file.
    const audit = await waitForRecords(s, 60);
    expect(new Set(audit.map((r) => r.request_id)).size).toBe(60);
    expect(audit.every((r) => r.outcome === 'completed' && r.principal?.key_id === 'alice')).toBe(true);

    // /metrics: both workers' request counters summed, the process metrics once.
    const metrics = await s.gate.metrics();
    const requests = [...metrics.matchAll(/^lmgate_requests_total\{[^}]*\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(requests).toBe(60);
    // Records, not the workers' batches of them.
    expect(metrics).toMatch(/^lmgate_audit_records_total 60$/m);
    expect(metrics.match(/^lmgate_process_cpu_seconds_total /gm)).toHaveLength(1);
    expect(await (await fetch(`http://127.0.0.1:${s.gate.adminPort}/readyz`)).text()).toBe('ready\n');

    // A reload reaches both workers: carol is let in on every request, whichever serves it.
    const before = await requestsPerWorker(s);
    await s.gate.writeConfig(
      gateConfig({
        grpcPort: s.gate.grpcPort,
        adminPort: s.gate.adminPort,
        auditPath: s.gate.auditPath,
        keys: [alice, carol],
        workers: 2,
      }),
    );
    const deadline = Date.now() + 10_000;
    while (
      (await openai(s, carol.key)
        .models.list()
        .then(
          () => true,
          () => false,
        )) === false
    ) {
      if (Date.now() > deadline) throw new Error('carol never let in after the reload');
      await new Promise((r) => setTimeout(r, 100));
    }
    const carolResults = await Promise.all(Array.from({ length: 12 }, (_, i) => chat(s, carol.key, 2 * i)));
    expect(carolResults.every((t) => t > 0)).toBe(true);
    const after = await requestsPerWorker(s);
    for (const p of ports) expect(after.get(p)! - before.get(p)!).toBeGreaterThan(0);

    // SIGTERM drains both workers and exits 0 with every record written.
    // Workers post records in batches (at most 5 ms apart): read the count once it is settled.
    let total = -1;
    for (let n = (await s.gate.audit()).length; n !== total; n = (await s.gate.audit()).length) {
      total = n;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await s.gate.stop('SIGTERM')).toBe(0);
    expect((await s.gate.audit()).length).toBe(total);
  });
});

async function waitForRecords(s: Stack, n: number): Promise<Record<string, any>[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const records = await s.gate.audit();
    if (records.length >= n || Date.now() > deadline) return records;
    await new Promise((r) => setTimeout(r, 50));
  }
}
