// What one bench run starts: the mock model server, one gate process per profile (each with its
// own config from bench/profiles/), and one Envoy with a listener per route, all on free
// loopback ports. Every route shares the same Envoy process and the same mock, so the only
// difference between the direct route and a gated one is the ext_proc filter.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGate } from '../../scripts/build.ts';
import { ROOT, renderEnvoyConfig, startEnvoy } from '../../test/harness/envoy.ts';

export { FULL_DUPLEX_PROCESSING_MODE as DUPLEX_PROCESSING_MODE } from '../../test/harness/envoy.ts';

import { freeConsecutivePorts, freePort, waitFor } from '../../test/harness/ports.ts';
import { Proc } from '../../test/harness/processes.ts';
import { aiGatewayCluster, aiGatewayListener, type ExtProcPeer, metadataAccessLog } from './ai-gateway-envoy.ts';

type Json = Record<string, any>;

export class BenchProcess {
  readonly proc: Proc;
  constructor(proc: Proc) {
    this.proc = proc;
  }
  get pid(): number {
    return this.proc.child.pid!;
  }
  /** User plus system CPU seconds so far, from /proc (clock ticks are 1/100 s on Linux). */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  }
  /** Peak resident set size in MiB (VmHWM). */
  async peakRssMiB(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
    return Math.round((kb / 1024) * 10) / 10;
  }
}

export class Mock extends BenchProcess {
  readonly port: number;
  constructor(proc: Proc, port: number) {
    super(proc);
    this.port = port;
  }
}

export async function startMock(): Promise<Mock> {
  const port = await freePort();
  const proc = new Proc('mock', process.execPath, [
    join(ROOT, 'test', 'mock', 'model-server.ts'),
    '--port',
    String(port),
  ]);
  await waitFor('mock model server', async () => {
    if (!proc.running) throw new Error(`mock exited\n${proc.describe()}`);
    return (await fetch(`http://127.0.0.1:${port}/v1/models`)).ok ? true : undefined;
  });
  return new Mock(proc, port);
}

export class BenchGate extends BenchProcess {
  readonly name: string;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly dir: string;
  /** Set when Envoy should reach this gate over its Unix socket instead of TCP. */
  readonly unixSocket: string | undefined;
  /** server.workers: ports grpcPort..grpcPort+workers-1, one Envoy endpoint each. */
  readonly workers: number;
  constructor(
    name: string,
    proc: Proc,
    grpcPort: number,
    adminPort: number,
    dir: string,
    opts: { unixSocket?: string | undefined; workers?: number } = {},
  ) {
    super(proc);
    this.workers = opts.workers ?? 1;
    this.name = name;
    this.grpcPort = grpcPort;
    this.adminPort = adminPort;
    this.dir = dir;
    this.unixSocket = opts.unixSocket;
  }
  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`)).text();
  }
  /** Tokens this gate metered from upstream usage (lmgate_tokens_total, all labels). */
  async tokensMetered(): Promise<number> {
    let sum = 0;
    for (const m of (await this.metrics()).matchAll(/^lmgate_tokens_total\{[^}]*\} (\d+)$/gm)) sum += Number(m[1]);
    return sum;
  }
  /** Every series of one metric: its label set as written ({a="x",b="y"}) → value. */
  async metricValues(name: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const re = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm');
    for (const m of (await this.metrics()).matchAll(re)) out[m[1] ?? ''] = Number(m[2]);
    return out;
  }
  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM', 20_000);
  }
}

/** The V8 flags README recommends for a deployed gate (Memory). */
export const GATE_NODE_OPTIONS = '--max-semi-space-size=4';

/** The gate compiled to JavaScript once per bench run (scripts/build.ts), into a folder of the
 * run's own under .cache/ (inside the repository, so its imports find node_modules): what a
 * deployment runs, without the memory Node's type stripping costs. */
let built: Promise<string> | undefined;
function builtGateEntry(): Promise<string> {
  built ??= (async () => {
    await mkdir(join(ROOT, '.cache'), { recursive: true });
    const dir = await mkdtemp(join(ROOT, '.cache', 'bench-build-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await buildGate(dir);
    return join(dir, 'extproc', 'main.js');
  })();
  return built;
}

/** The gate of another commit, compiled like the bench's own (bench:ab's rev=): its extproc/,
 * protos/ and tsconfigs from `git archive`, into a folder under .cache/ so its imports find this
 * checkout's node_modules (a revision with other dependencies runs against today's). A lever's
 * before and after then run behind one Envoy in one run. */
const builtRevisions = new Map<string, Promise<string>>();
export function builtRevisionEntry(rev: string): Promise<string> {
  let built = builtRevisions.get(rev);
  if (built === undefined) {
    built = (async () => {
      const sha = execFileSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], {
        cwd: ROOT,
        encoding: 'utf8',
      }).trim();
      await mkdir(join(ROOT, '.cache'), { recursive: true });
      const dir = await mkdtemp(join(ROOT, '.cache', `bench-rev-${sha.slice(0, 12)}-`));
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      const src = join(dir, 'src');
      await mkdir(src);
      const tar = execFileSync('git', ['archive', sha, 'extproc', 'protos', 'tsconfig.json', 'tsconfig.build.json'], {
        cwd: ROOT,
        maxBuffer: 256 * 1024 * 1024,
      });
      execFileSync('tar', ['-x', '-C', src], { input: tar });
      const out = join(dir, 'out');
      execFileSync(
        process.execPath,
        [
          join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          '-p',
          join(src, 'tsconfig.build.json'),
          '--outDir',
          out,
        ],
        { stdio: 'inherit' },
      );
      execFileSync('cp', ['-r', join(src, 'protos'), join(out, 'protos')]);
      return join(out, 'extproc', 'main.js');
    })();
    builtRevisions.set(rev, built);
  }
  return built;
}

/** A gate process serving bench/profiles/<profile>.yaml. The profile reads its ports, audit
 * path and the bench key's hash from the environment (${LMG_*} in the YAML). */
export async function startGate(
  name: string,
  profile: string,
  env: Record<string, string>,
  opts: {
    cpuProfileDir?: string;
    unixSocket?: boolean;
    workers?: number;
    nodeArgs?: string[];
    /** Count the profile's limits and budgets in this Redis (limits.store: redis). */
    redisUrl?: string;
    /** audit.durability for the profile's audit sink (none, interval, strict). */
    auditDurability?: 'none' | 'interval' | 'strict';
    /** The gate's entry module instead of the compiled one (bench:rss --source: the sources). */
    entry?: string;
    /** Another Node binary for the gate (bench:ab's bin=: a Node release against this one). */
    execPath?: string;
  } = {},
): Promise<BenchGate> {
  const dir = await mkdtemp(join(tmpdir(), `lm-gate-bench-${name}-`));
  const workers = opts.workers ?? 1;
  const grpcPort = workers > 1 ? await freeConsecutivePorts(workers) : await freePort();
  const adminPort = await freePort();
  let config = join(ROOT, 'bench', 'profiles', `${profile}.yaml`);
  const unixSocket = opts.unixSocket ? join(dir, 'grpc.sock') : undefined;
  if (unixSocket || workers > 1 || opts.redisUrl || opts.auditDurability) {
    // The profile plus a Unix socket beside its TCP port (Envoy, health checks too, uses the
    // socket), gate workers, or its limits in Redis.
    let text = await readFile(config, 'utf8');
    config = join(dir, `${profile}.yaml`);
    const extra = `${unixSocket ? `  unixSocket: ${unixSocket}\n` : ''}${workers > 1 ? `  workers: ${workers}\n` : ''}`;
    text = text.replace(/^server:\n/m, `server:\n${extra}`);
    if (opts.redisUrl) {
      if (!/^ {2}store: memory$/m.test(text))
        throw new Error(`profile ${profile} has no limits.store to move to Redis`);
      text = `${text.replace(/^ {2}store: memory$/m, '  store: redis')}redis:\n  url: ${opts.redisUrl}\n  keyPrefix: "bench-${name}:"\n`;
    }
    if (opts.auditDurability) {
      if (!/^audit:\n {2}path: .*$/m.test(text)) throw new Error(`profile ${profile} has no audit section`);
      text = text.replace(/^(audit:\n {2}path: .*)$/m, `$1\n  durability: ${opts.auditDurability}`);
    }
    await writeFile(config, text);
  }
  const args = [opts.entry ?? (await builtGateEntry()), 'serve', '-c', config];
  if (opts.cpuProfileDir) args.unshift('--cpu-prof', '--cpu-prof-dir', opts.cpuProfileDir);
  // Flags NODE_OPTIONS does not take (--trace-gc), for experiments.
  if (opts.nodeArgs) args.unshift(...opts.nodeArgs);
  const proc = new Proc(`gate-${name}`, opts.execPath ?? process.execPath, args, {
    ...process.env,
    // README's deployment setting (Memory): a young generation of 2 x 4 MiB instead of V8's
    // up to 2 x 64 MiB. A variant's own NODE_OPTIONS (bench:ab) replaces it.
    NODE_OPTIONS: GATE_NODE_OPTIONS,
    ...env,
    LMG_GRPC_PORT: String(grpcPort),
    LMG_ADMIN_PORT: String(adminPort),
    LMG_AUDIT_PATH: join(dir, 'audit.log'),
  });
  await waitFor(`gate ${name}`, async () => {
    if (!proc.running) throw new Error(`gate ${name} exited\n${proc.describe()}`);
    return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200 ? true : undefined;
  });
  return new BenchGate(name, proc, grpcPort, adminPort, dir, { unixSocket, workers });
}

export interface Route {
  name: string;
  port: number;
  /** No gate: Envoy alone. */
  gate?: BenchGate;
  /** A second ext_proc filter after the gate's, in observability_mode, to this gate: Envoy
   * sends it the request and the response without waiting for answers. */
  observer?: BenchGate;
  /** Envoy AI Gateway's extproc instead of a gate: its two ext_proc filters (router and
   * upstream level) and a model cluster of its own (bench/lib/ai-gateway-envoy.ts). */
  aiGateway?: ExtProcPeer;
  /** A JSON access log of the route's dynamic metadata to this file (verification listeners
   * only: the measured ones log nothing). */
  accessLog?: string;
  /** The gate's ext_proc processing_mode instead of envoy/envoy.yaml's. */
  processingMode?: Json;
  /** Envoy adds x-envoy-internal and x-forwarded-for to the gate's gRPC streams (envoy.yaml's
   * skip_envoy_headers off). */
  envoyHeaders?: boolean;
}

/** The ext_proc clusters a route's filters call: Envoy must see them healthy before load. */
export function extProcClusters(r: Omit<Route, 'port'>): string[] {
  const out = [r.gate, r.observer].filter((g) => g !== undefined).map((g) => `lm_gate_${g.name}`);
  if (r.aiGateway) out.push(`ext_proc_${r.aiGateway.name}`);
  return out;
}

export class BenchEnvoy extends BenchProcess {
  readonly adminPort: number;
  readonly routes: Route[];
  constructor(proc: Proc, adminPort: number, routes: Route[]) {
    super(proc);
    this.adminPort = adminPort;
    this.routes = routes;
  }
  url(route: string): string {
    const r = this.routes.find((x) => x.name === route);
    if (!r) throw new Error(`no route ${route}`);
    return `http://127.0.0.1:${r.port}`;
  }
  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM');
  }
}

/** Our shipped envoy/envoy.yaml, its one listener cloned per route. The access log is left
 * out on every route: it would cost the same on each, and the bench measures the filter. */
export async function benchEnvoyConfig(file: string, adminPort: number, modelPort: number, routes: Route[]) {
  return renderEnvoyConfig({ listener: 0, admin: adminPort, gate: 0, model: modelPort }, file, (cfg: Json) => {
    const template = cfg.static_resources.listeners[0];
    const templateCluster = cfg.static_resources.clusters.find((c: Json) => c.name === 'lm_gate');
    /** The cluster for a gate, added on first use. */
    const gateCluster = (gate: BenchGate): string => {
      const name = `lm_gate_${gate.name}`;
      if (!clusters.some((c) => c.name === name)) {
        const c = structuredClone(templateCluster);
        c.name = name;
        c.load_assignment.cluster_name = name;
        const address = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address;
        if (gate.unixSocket) address.pipe = { path: gate.unixSocket };
        if (gate.unixSocket) delete address.socket_address;
        else address.socket_address.port_value = gate.grpcPort;
        if (gate.workers > 1) {
          // One endpoint per gate worker, as README's server.workers section says.
          c.lb_policy = 'LEAST_REQUEST';
          c.load_assignment.endpoints[0].lb_endpoints = Array.from({ length: gate.workers }, (_, i) => ({
            endpoint: gate.unixSocket
              ? { address: { pipe: { path: gate.unixSocket.replace(/(\.[^./]*)?$/, `-${i}$1`) } } }
              : { address: { socket_address: { address: '127.0.0.1', port_value: gate.grpcPort + i } } },
          }));
        }
        clusters.push(c);
      }
      return name;
    };
    const others = cfg.static_resources.clusters.filter((c: Json) => c.name !== 'lm_gate');
    const modelCluster = others.find((c: Json) => c.name === 'model_server');
    const listeners: Json[] = [];
    const clusters: Json[] = [...others];
    for (const r of routes) {
      const l = structuredClone(template);
      l.name = r.name;
      l.address.socket_address.port_value = r.port;
      const hcm = l.filter_chains[0].filters[0].typed_config;
      delete hcm.access_log;
      hcm.stat_prefix = r.name;
      const extProc = hcm.http_filters.find((f: Json) => f.name === 'envoy.filters.http.ext_proc');
      if (r.accessLog) hcm.access_log = [metadataAccessLog(r.accessLog)];
      if (r.aiGateway) {
        const name = `ext_proc_${r.aiGateway.name}`;
        if (!clusters.some((c) => c.name === name))
          clusters.push(aiGatewayCluster(name, r.aiGateway.grpcPort, templateCluster));
        clusters.push(aiGatewayListener(l, name, modelCluster).modelCluster);
      } else if (!r.gate) {
        hcm.http_filters = hcm.http_filters.filter((f: Json) => f !== extProc);
      } else {
        extProc.typed_config.grpc_service.envoy_grpc.cluster_name = gateCluster(r.gate);
        if (r.processingMode) extProc.typed_config.processing_mode = r.processingMode;
        if (r.envoyHeaders) extProc.typed_config.grpc_service.envoy_grpc.skip_envoy_headers = false;
        if (r.observer) {
          const observer = structuredClone(extProc);
          observer.name = 'lm_gate_observer';
          observer.typed_config.grpc_service.envoy_grpc.cluster_name = gateCluster(r.observer);
          Object.assign(observer.typed_config, {
            observability_mode: true,
            // The request (to know the API and model) and the response, never waited for.
            // In observability mode Envoy sends bodies only STREAMED: BUFFERED sends nothing.
            processing_mode: {
              request_header_mode: 'SEND',
              request_body_mode: 'STREAMED',
              request_trailer_mode: 'SKIP',
              response_header_mode: 'SEND',
              response_body_mode: 'STREAMED',
              response_trailer_mode: 'SKIP',
            },
            allow_mode_override: false,
          });
          hcm.http_filters.splice(hcm.http_filters.indexOf(extProc) + 1, 0, observer);
        }
      }
      listeners.push(l);
    }
    cfg.static_resources.listeners = listeners;
    cfg.static_resources.clusters = clusters;
  });
}

export async function startBenchEnvoy(
  routeSpecs: Omit<Route, 'port'>[],
  modelPort: number,
  concurrency: number,
): Promise<BenchEnvoy> {
  const routes: Route[] = [];
  for (const r of routeSpecs) routes.push({ ...r, port: await freePort() });
  const adminPort = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'lm-gate-bench-envoy-'));
  const file = await benchEnvoyConfig(join(dir, 'envoy.yaml'), adminPort, modelPort, routes);
  const envoy = await startEnvoy(file, { listener: 0, admin: adminPort, gate: 0, model: modelPort }, { concurrency });
  // Every gated route's cluster must be healthy before load starts (gRPC health check).
  const names = [...new Set(routes.flatMap(extProcClusters))];
  try {
    await waitFor('gate clusters healthy', async () => {
      const lines = (await (await fetch(`http://127.0.0.1:${adminPort}/clusters`)).text()).split('\n');
      const unhealthy = lines.filter(
        (l) => names.some((n) => l.startsWith(`${n}::`)) && l.includes('health_flags::/failed'),
      );
      const present = names.every((n) => lines.some((l) => l.startsWith(`${n}::`)));
      return present && unhealthy.length === 0 ? true : undefined;
    });
  } catch (err) {
    await envoy.stop();
    throw err;
  }
  return new BenchEnvoy(envoy.proc, adminPort, routes);
}
