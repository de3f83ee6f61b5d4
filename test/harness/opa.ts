// A real Open Policy Agent server for the policy.opa tests, built from its Go module at the
// version pinned in scripts/toolchain.env, as the bench builds its peers: `go mod download`
// (checked against the go.sum hash pinned beside the version), then `go build -mod=readonly` in
// the downloaded module, so exactly the dependency versions its release used. The module and
// build caches live under .cache/go/, so a fresh clone builds it once (a minute or two on two
// cores) and every later run reuses the binary; `.ci/run` builds it before the suites
// (scripts/opa.ts) so no test hook pays for it.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './envoy.ts';
import { freePort, waitFor } from './ports.ts';
import { Proc } from './processes.ts';
import { toolchain } from './toolchain.ts';

const run = promisify(execFile);

export const OPA_MODULE = 'github.com/open-policy-agent/opa';
export const OPA_VERSION = `v${toolchain().OPA_VERSION ?? '1.22.2'}`;
/** The module's go.sum hash (h1:…): a download that differs is refused. */
export const OPA_SUM = toolchain().OPA_SUM;

export interface OpaBuild {
  bin: string;
  /** Wall seconds of the build that made this binary (download and compile, on the caches it
   * found); null when OPA_BIN was given. */
  buildS: number | null;
  cached: boolean;
}

interface BuildRecord {
  version: string;
  sum: string;
  buildS: number;
  go: string;
  builtAt: string;
}

const GO_CACHE = join(ROOT, '.cache', 'go');

/** OPA_BIN, else the pinned version in .cache/opa-<version>/, built there on first use. Safe to
 * call from several processes at once: one builds (holding a lock directory), the others wait. */
export async function ensureOpa(log: (m: string) => void = () => {}): Promise<OpaBuild> {
  if (process.env.OPA_BIN) return { bin: process.env.OPA_BIN, buildS: null, cached: true };
  const dir = join(ROOT, '.cache', `opa-${OPA_VERSION}`);
  const bin = join(dir, 'opa');
  const recordFile = join(dir, 'build.json');
  const built = async (): Promise<OpaBuild | undefined> => {
    if (!existsSync(bin) || !existsSync(recordFile)) return undefined;
    const rec = JSON.parse(await readFile(recordFile, 'utf8')) as BuildRecord;
    if (rec.version !== OPA_VERSION || (OPA_SUM && rec.sum !== OPA_SUM)) return undefined;
    return { bin, buildS: rec.buildS, cached: true };
  };
  const have = await built();
  if (have) return have;
  await mkdir(dir, { recursive: true });
  const lock = join(dir, 'build.lock');
  // mkdir is atomic: whoever creates the lock builds; a lock older than the longest build is a
  // builder that died, and is taken over.
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      const again = await built();
      if (again) return again;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 15 * 60_000) await rm(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    const again = await built();
    if (again) return again;
    log(`building OPA ${OPA_VERSION} from its Go module into .cache/ (a minute or two the first time)`);
    const t0 = performance.now();
    const go = (await goCmd(['version'])).trim();
    const mod = JSON.parse(await goCmd(['mod', 'download', '-json', `${OPA_MODULE}@${OPA_VERSION}`])) as {
      Dir?: string;
      Sum?: string;
      Error?: string;
    };
    if (mod.Error || !mod.Dir) throw new Error(`go mod download ${OPA_MODULE}@${OPA_VERSION}: ${mod.Error}`);
    if (OPA_SUM && mod.Sum !== OPA_SUM)
      throw new Error(`${OPA_MODULE}@${OPA_VERSION} has sum ${mod.Sum}, scripts/toolchain.env pins ${OPA_SUM}`);
    const tmp = `${bin}.${process.pid}.tmp`;
    await goCmd(['-C', mod.Dir, 'build', '-mod=readonly', '-trimpath', '-o', tmp, '.']);
    await rename(tmp, bin);
    const buildS = Math.round((performance.now() - t0) / 100) / 10;
    const rec: BuildRecord = {
      version: OPA_VERSION,
      sum: mod.Sum ?? '',
      buildS,
      go,
      builtAt: new Date().toISOString(),
    };
    await writeFile(recordFile, `${JSON.stringify(rec, null, 2)}\n`);
    log(`built OPA ${OPA_VERSION} in ${buildS} s`);
    return { bin, buildS, cached: false };
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function goCmd(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('go', args, {
      cwd: join(ROOT, '.cache'),
      env: {
        ...process.env,
        CGO_ENABLED: '0',
        GOMODCACHE: join(GO_CACHE, 'mod'),
        GOCACHE: join(GO_CACHE, 'build'),
        // Writable module files, so `rm -rf .cache` works.
        GOFLAGS: '-modcacherw',
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('the OPA tests build OPA with Go: put `go` on PATH or set OPA_BIN');
    throw new Error(`go ${args.join(' ')} failed:\n${e.stderr ?? String(err)}`);
  }
}

export class Opa {
  readonly proc: Proc;
  readonly port: number;
  constructor(proc: Proc, port: number) {
    this.proc = proc;
    this.port = port;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM');
  }
}

/** `opa run --server` on a free loopback port with the given Rego modules (file name → text),
 * ready once its health endpoint answers. */
export async function startOpa(policies: Record<string, string>, workDir: string): Promise<Opa> {
  const { bin } = await ensureOpa();
  const files: string[] = [];
  for (const [name, text] of Object.entries(policies)) {
    const f = join(workDir, name);
    await writeFile(f, text);
    files.push(f);
  }
  const port = await freePort();
  const proc = new Proc('opa', bin, [
    'run',
    '--server',
    '--addr',
    `127.0.0.1:${port}`,
    '--log-level',
    'error',
    '--disable-telemetry',
    ...files,
  ]);
  await waitFor('opa ready', async () => {
    if (!proc.running) throw new Error(`opa exited\n${proc.describe()}`);
    const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    return res?.ok ? true : undefined;
  });
  return new Opa(proc, port);
}
