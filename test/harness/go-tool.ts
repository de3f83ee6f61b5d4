// The Go tools the tests run (helm, istioctl, egctl for the deploy tests; OPA, test/harness/opa.ts),
// each built from its Go module at the version pinned in scripts/toolchain.env: `go mod
// download` (checked against the go.sum hash pinned beside the version), then `go build
// -mod=readonly` in the downloaded module, so exactly the dependency versions its release used.
// The module and build caches live under .cache/go/ and each binary in .cache/<tool>-<version>/,
// so a fresh clone builds each once and every later run reuses it; `.ci/run` builds them before
// the suites (scripts/deploy-tools.ts) so no test hook waits for a Go build.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './envoy.ts';
import { toolchain } from './toolchain.ts';

const run = promisify(execFile);

export interface GoTool {
  /** The binary's name, and the `.cache/<name>-<version>/` it is built into. */
  name: string;
  module: string;
  /** The package of the command inside the module ('.' for the module root). */
  pkg: string;
  version: string;
  /** The module's go.sum hash (h1:…): a download that differs is refused. */
  sum: string | undefined;
  /** An environment variable naming a binary to use instead of building one. */
  env: string;
}

function pinned(name: string, module: string, pkg: string, key: string): GoTool {
  const t = toolchain();
  const version = t[`${key}_VERSION`];
  if (!version) throw new Error(`scripts/toolchain.env pins no ${key}_VERSION`);
  return { name, module, pkg, version, sum: t[`${key}_SUM`], env: `${key}_BIN` };
}

export const HELM = pinned('helm', 'helm.sh/helm/v3', 'cmd/helm', 'HELM');
// Istio's module has no semver tags on the module proxy: the pin is the pseudo-version of a
// commit on a release branch (scripts/toolchain.env says which).
export const ISTIOCTL = pinned('istioctl', 'istio.io/istio', 'istioctl/cmd/istioctl', 'ISTIO');
export const EGCTL = pinned('egctl', 'github.com/envoyproxy/gateway', 'cmd/egctl', 'ENVOY_GATEWAY');
export const DEPLOY_TOOLS = [HELM, EGCTL, ISTIOCTL] as const;

export interface GoToolBuild {
  bin: string;
  /** Wall seconds of the build that made this binary (download and compile, on the caches it
   * found); null when the tool's *_BIN variable was given. */
  buildS: number | null;
  cached: boolean;
}

interface BuildRecord {
  module: string;
  version: string;
  sum: string;
  buildS: number;
  go: string;
  builtAt: string;
}

const GO_CACHE = join(ROOT, '.cache', 'go');

/** $<TOOL>_BIN, else the pinned version in .cache/<name>-<version>/, built there on first use.
 * Safe to call from several processes at once: one builds (holding a lock directory), the
 * others wait. */
export async function ensureGoTool(tool: GoTool, log: (m: string) => void = () => {}): Promise<GoToolBuild> {
  const fromEnv = process.env[tool.env];
  if (fromEnv) return { bin: fromEnv, buildS: null, cached: true };
  const dir = join(ROOT, '.cache', `${tool.name}-${tool.version}`);
  const bin = join(dir, tool.name);
  const recordFile = join(dir, 'build.json');
  const built = async (): Promise<GoToolBuild | undefined> => {
    if (!existsSync(bin) || !existsSync(recordFile)) return undefined;
    const rec = JSON.parse(await readFile(recordFile, 'utf8')) as BuildRecord;
    if (rec.module !== tool.module || rec.version !== tool.version || (tool.sum && rec.sum !== tool.sum))
      return undefined;
    return { bin, buildS: rec.buildS, cached: true };
  };
  const have = await built();
  if (have) return have;
  await mkdir(dir, { recursive: true });
  const lock = join(dir, 'build.lock');
  // mkdir is atomic: whoever creates the lock builds; a lock older than the longest build is a
  // builder that died, and is taken over (istioctl takes many minutes cold on two cores).
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      const again = await built();
      if (again) return again;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 45 * 60_000) await rm(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    const again = await built();
    if (again) return again;
    log(`building ${tool.name} ${tool.version} from ${tool.module} into .cache/ (once; minutes the first time)`);
    const t0 = performance.now();
    const go = (await goCmd(tool, ['version'])).trim();
    const mod = JSON.parse(await goCmd(tool, ['mod', 'download', '-json', `${tool.module}@${tool.version}`])) as {
      Dir?: string;
      Sum?: string;
      Error?: string;
    };
    if (mod.Error || !mod.Dir) throw new Error(`go mod download ${tool.module}@${tool.version}: ${mod.Error}`);
    if (tool.sum && mod.Sum !== tool.sum)
      throw new Error(`${tool.module}@${tool.version} has sum ${mod.Sum}, scripts/toolchain.env pins ${tool.sum}`);
    const tmp = `${bin}.${process.pid}.tmp`;
    await goCmd(tool, ['-C', mod.Dir, 'build', '-mod=readonly', '-trimpath', '-o', tmp, `./${tool.pkg}`]);
    await rename(tmp, bin);
    const buildS = Math.round((performance.now() - t0) / 100) / 10;
    const rec: BuildRecord = {
      module: tool.module,
      version: tool.version,
      sum: mod.Sum ?? '',
      buildS,
      go,
      builtAt: new Date().toISOString(),
    };
    await writeFile(recordFile, `${JSON.stringify(rec, null, 2)}\n`);
    log(`built ${tool.name} ${tool.version} in ${buildS} s`);
    return { bin, buildS, cached: false };
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function goCmd(tool: GoTool, args: string[]): Promise<string> {
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
    if (e.code === 'ENOENT')
      throw new Error(`the tests build ${tool.name} with Go: put \`go\` on PATH or set ${tool.env}`);
    throw new Error(`go ${args.join(' ')} failed:\n${e.stderr ?? String(err)}`);
  }
}

export interface ToolRun {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a built tool; a non-zero exit is a result, not an exception (the checks must be able to
 * fail). */
export async function runTool(
  bin: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ToolRun> {
  try {
    const { stdout, stderr } = await run(bin, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { ok: true, code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { ok: false, code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
