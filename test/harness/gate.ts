// The gate as a real process (`node extproc/main.ts serve`), exactly as operators run it.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateApiKey, hashApiKey } from '../../extproc/identity/api-keys.ts';
import { ROOT } from './envoy.ts';
import { freeConsecutivePorts, freePort, waitFor } from './ports.ts';
import { Proc, ProcExited } from './processes.ts';
import { tempDir } from './temp-dirs.ts';

export interface TestKey {
  id: string;
  key: string;
  tenant: string;
  models?: string[];
  endpoints?: string[];
}

export function makeKey(id: string, opts: Partial<Omit<TestKey, 'id' | 'key'>> = {}): TestKey {
  return { id, key: generateApiKey(id), tenant: opts.tenant ?? 'acme', ...opts };
}

export function gateConfig(opts: {
  grpcPort: number;
  adminPort: number;
  auditPath: string;
  keys: TestKey[];
  /** identity.keysFile: keys the gate reads (and reloads) from that file besides `keys`. */
  keysFile?: string;
  unixSocket?: string;
  workers?: number;
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  // extra.identity adds to the keys (identity.jwt, …) rather than replacing them; extra.audit
  // to the audit path; extra.server to the addresses.
  const { identity, audit, server, ...extra } = (opts.extra ?? {}) as {
    identity?: Record<string, unknown>;
    audit?: Record<string, unknown>;
    server?: Record<string, unknown>;
  };
  return {
    server: {
      grpcAddress: `127.0.0.1:${opts.grpcPort}`,
      adminAddress: `127.0.0.1:${opts.adminPort}`,
      ...(opts.unixSocket ? { unixSocket: opts.unixSocket } : {}),
      ...(opts.workers ? { workers: opts.workers } : {}),
      drainTimeoutMs: 10_000,
      ...server,
    },
    logging: { level: 'info' },
    identity: {
      apiKeys: opts.keys.map((k) => ({
        id: k.id,
        sha256: hashApiKey(k.key),
        tenant: k.tenant,
        ...(k.models ? { models: k.models } : {}),
        ...(k.endpoints ? { endpoints: k.endpoints } : {}),
      })),
      ...(opts.keysFile ? { keysFile: opts.keysFile } : {}),
      ...identity,
    },
    audit: { path: opts.auditPath, ...audit },
    ...extra,
  };
}

export class Gate {
  readonly proc: Proc;
  readonly dir: string;
  readonly configPath: string;
  readonly auditPath: string;
  readonly grpcPort: number;
  readonly adminPort: number;
  constructor(proc: Proc, dir: string, configPath: string, auditPath: string, grpcPort: number, adminPort: number) {
    this.proc = proc;
    this.dir = dir;
    this.configPath = configPath;
    this.auditPath = auditPath;
    this.grpcPort = grpcPort;
    this.adminPort = adminPort;
  }

  /** The request records of the active audit file (not its checkpoint and break lines). */
  async audit(): Promise<Record<string, any>[]> {
    return (await this.auditLines()).filter((r) => r.type === 'request');
  }

  /** Every line of the active audit file, parsed: records, checkpoints and breaks. */
  async auditLines(): Promise<Record<string, any>[]> {
    const text = await readFile(this.auditPath, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>);
  }

  /** Wait until the audit has a record for this request id (records are written async). */
  async auditFor(requestId: string): Promise<Record<string, any>> {
    return waitFor(
      `audit record ${requestId}`,
      async () => (await this.audit()).find((r) => r.request_id === requestId),
      5000,
    );
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`)).text();
  }

  /** Replaces the config file by rename, as editors and Kubernetes ConfigMaps do: written in
   * place, a loaded machine could let the gate's reload read it half-written (rejected, then
   * applied), and a test waiting for one reload would see the other. */
  async writeConfig(config: Record<string, unknown> | string): Promise<void> {
    const next = `${this.configPath}.next`;
    await writeFile(next, typeof config === 'string' ? config : stringify(config));
    await rename(next, this.configPath);
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return this.proc.stop(signal, 20_000);
  }
}

/** `dir`: write the config and audit log there instead of a new temporary folder; `log`: a
 * file for the gate's output (the quickstart points its users at both). */
export async function startGate(
  keys: TestKey[],
  opts: {
    unixSocket?: boolean;
    workers?: number;
    keysFile?: string;
    extra?: Record<string, unknown>;
    dir?: string;
    log?: string;
  } = {},
): Promise<Gate> {
  const dir = opts.dir ?? (await tempDir('lm-gate-test-'));
  const workers = opts.workers ?? 1;
  const grpcPort = workers > 1 ? await freeConsecutivePorts(workers) : await freePort();
  const adminPort = await freePort();
  const auditPath = join(dir, 'audit.log');
  const configPath = join(dir, 'lm-gate.yaml');
  const unixSocket = opts.unixSocket ? join(dir, 'gate.sock') : undefined;
  await writeFile(
    configPath,
    stringify(
      gateConfig({
        grpcPort,
        adminPort,
        auditPath,
        keys,
        ...(unixSocket ? { unixSocket } : {}),
        ...(workers > 1 ? { workers } : {}),
        ...(opts.keysFile ? { keysFile: opts.keysFile } : {}),
        ...(opts.extra ? { extra: opts.extra } : {}),
      }),
    ),
  );
  const proc = new Proc(
    'lm-gate',
    process.execPath,
    [join(ROOT, 'extproc', 'main.ts'), 'serve', '-c', configPath],
    process.env,
    opts.log ? { log: opts.log } : {},
  );
  try {
    await waitFor('gate ready', async () => {
      if (!proc.running) throw new ProcExited(proc);
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      return r.status === 200 ? true : undefined;
    });
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return new Gate(proc, dir, configPath, auditPath, grpcPort, adminPort);
}
