// What `npm run bench:isolation` starts beyond bench/lib/topology.ts: one gate with two
// tenants, a sink upstream for the attacker, and one Envoy whose attacker listener routes there.
//
// Why a sink: the attacker's bodies that the gate lets through would otherwise reach the mock
// model server, which JSON-parses every body on its own event loop (half a second for some of
// these) and also serves the victim. The victim would then queue behind the mock, not the gate.
// The sink reads and discards the body and answers a fixed small completion, so the only things
// the two tenants share are Envoy and the gate, which is what this bench measures.
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT, startEnvoy } from '../../test/harness/envoy.ts';
import { freePort, waitFor } from '../../test/harness/ports.ts';
import { BenchEnvoy, type BenchGate, benchEnvoyConfig, type Route, startGate } from './topology.ts';

type Json = Record<string, any>;

export const TENANTS = ['victim', 'attacker'] as const;
export type Tenant = (typeof TENANTS)[number];

/** The environment variable carrying a tenant's key hash into the profile. */
export const keyHashEnv = (t: Tenant) => `LMG_${t.toUpperCase()}_KEY_SHA256`;

/** bench/profiles/<base>.yaml with its one key replaced by one key per tenant, each with the
 * base key's models and endpoints (governed: mock-*, chat and models) and admitted by the policy
 * rules that admit the base key's tenant; with `uploads`, a byte limit per tenant with a queue.
 * Written to `dir`. */
export async function writeTenantProfile(
  dir: string,
  base = 'governed',
  uploads?: { limit: number; queueMs: number },
): Promise<string> {
  const cfg = parse(await readFile(join(ROOT, 'bench', 'profiles', `${base}.yaml`), 'utf8')) as Json;
  const template = cfg.identity.apiKeys[0] as Json;
  cfg.identity.apiKeys = TENANTS.map((t) => ({ ...template, id: t, tenant: t, sha256: `\${${keyHashEnv(t)}}` }));
  // The base key's tenant may be named in policy rules (governed: bench-chat admits tenant
  // bench); each tenant here stands in for it.
  for (const rule of (cfg.policy?.rules ?? []) as Json[]) {
    const tenants = rule.from?.tenants as string[] | undefined;
    if (tenants?.includes(template.tenant)) rule.from.tenants = [...tenants, ...TENANTS];
  }
  if (uploads) cfg.limits.rate.push({ id: 'uploads', scope: 'tenant', unit: 'bytes', per: 'second', ...uploads });
  const file = join(dir, `isolation-${base}.yaml`);
  await writeFile(
    file,
    `# bench/profiles/${base}.yaml with one key per tenant (bench/isolation.ts)\n${stringify(cfg)}`,
  );
  return file;
}

/** A gate serving the config file `file` (not a bench profile). */
export function startGateWithConfig(name: string, file: string, env: Record<string, string>): Promise<BenchGate> {
  // startGate takes a profile name and reads bench/profiles/<profile>.yaml; a relative path
  // from there reaches any file. (Better: an opts.configFile on startGate.)
  const profile = relative(join(ROOT, 'bench', 'profiles'), file).replace(/\.yaml$/, '');
  return startGate(name, profile, env);
}

export interface Sink {
  port: number;
  /** Requests answered and request-body bytes read so far. */
  requests: number;
  bytes: number;
  close(): Promise<void>;
}

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-sink',
  object: 'chat.completion',
  created: 0,
  model: 'mock-small',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/** An upstream that reads each body without parsing it and answers a fixed chat completion. */
export async function startSink(): Promise<Sink> {
  const sink: Sink = { port: 0, requests: 0, bytes: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    req.on('data', (d: Buffer) => {
      sink.bytes += d.length;
    });
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    req.on('end', () => {
      sink.requests++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(COMPLETION) });
      res.end(COMPLETION);
    });
  });
  // Envoy pools upstream connections: keep them longer than its idle timeout would.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.address();
  sink.port = typeof a === 'object' && a ? a.port : 0;
  sink.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return sink;
}

export interface IsolationRoute extends Omit<Route, 'port'> {
  /** Send this listener's requests here instead of the mock model server. */
  upstreamPort?: number;
}

/** startBenchEnvoy (the shipped envoy.yaml, one listener per route, gates' clusters healthy
 * before it returns) plus a cluster of its own for each route with an upstreamPort. */
export async function startIsolationEnvoy(
  specs: IsolationRoute[],
  modelPort: number,
  concurrency: number,
  dir: string,
): Promise<BenchEnvoy> {
  const routes: (Route & { upstreamPort?: number })[] = [];
  for (const r of specs) routes.push({ ...r, port: await freePort() });
  const adminPort = await freePort();
  const file = await benchEnvoyConfig(join(dir, 'envoy.yaml'), adminPort, modelPort, routes);
  // The edit startBenchEnvoy has no hook for: each such listener's route to a cloned
  // model_server cluster on the other port.
  const cfg = parse(await readFile(file, 'utf8')) as Json;
  const model = cfg.static_resources.clusters.find((c: Json) => c.name === 'model_server');
  for (const r of routes) {
    if (r.upstreamPort === undefined) continue;
    const c = structuredClone(model);
    c.name = `upstream_${r.name}`;
    c.load_assignment.cluster_name = c.name;
    c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = r.upstreamPort;
    cfg.static_resources.clusters.push(c);
    const l = cfg.static_resources.listeners.find((x: Json) => x.name === r.name);
    const hcm = l.filter_chains[0].filters[0].typed_config;
    for (const vh of hcm.route_config.virtual_hosts) for (const rt of vh.routes) rt.route.cluster = c.name;
  }
  await writeFile(file, stringify(cfg));
  const envoy = await startEnvoy(file, { listener: 0, admin: adminPort, gate: 0, model: modelPort }, { concurrency });
  const gates = routes.flatMap((r) => [r.gate, r.observer]).filter((g) => g !== undefined);
  try {
    await waitFor('gate clusters healthy', async () => {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/clusters`)).text();
      const failed = text.split('\n').some((l) => l.startsWith('lm_gate_') && l.includes('health_flags::/failed'));
      return !failed && gates.every((g) => text.includes(`lm_gate_${g.name}::`)) ? true : undefined;
    });
  } catch (err) {
    await envoy.stop();
    throw err;
  }
  return new BenchEnvoy(envoy.proc, adminPort, routes);
}

/** Envoy counters by name (from /stats?usedonly); absent ones are 0. */
export async function envoyCounters(envoy: BenchEnvoy, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats?usedonly`)).text();
  const out: Record<string, number> = {};
  for (const name of names) {
    const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
    out[name] = m ? Number(m[1]) : 0;
  }
  return out;
}

/** The gate's longest event-loop delay since the last call, in ms (prom-client's
 * nodejs_eventloop_lag_max_seconds, whose histogram resets on every scrape). */
export async function gateLoopMaxMs(gate: BenchGate): Promise<number> {
  const m = /^lmgate_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? ([\d.eE+-]+)$/m.exec(await gate.metrics());
  return m ? Math.round(Number(m[1]) * 1000) : Number.NaN;
}
