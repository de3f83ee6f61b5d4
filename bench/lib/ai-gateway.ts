// The peer in `npm run bench:peers`: Envoy AI Gateway's external processor (cmd/extproc),
// built from its Go module at the version pinned in scripts/toolchain.env and run behind the
// same Envoy as LM Gate, without its Kubernetes controller. What the controller would generate
// is written here by hand: the filter config file the extproc reads (its internal/filterapi
// format) and the Envoy filters and clusters it expects (bench/lib/ai-gateway-envoy.ts).
//
// Build: `go install …@version` is refused here (the module proxy will not list the module's
// versions), so the module is downloaded with `go mod download` (checked against the go.sum
// hash pinned in toolchain.env) and built in place with `go build -mod=readonly` (its own
// go.sum, so exactly the dependency versions its release used), with the
// version string its release Makefile stamps (`git describe --tags --long`: v1.0.0-0-g<sha>)
// set on its version package. The extproc refuses a config whose `version` differs from the
// stamped one (an unstamped build calls itself "dev"), so the stamp is what lets it load ours.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { ROOT } from '../../test/harness/envoy.ts';
import { freePort, waitFor } from '../../test/harness/ports.ts';
import { Proc, ProcExited } from '../../test/harness/processes.ts';
import { aiGatewayFilterConfig } from './ai-gateway-envoy.ts';
import { BenchProcess } from './topology.ts';
import { toolchain } from './vegeta.ts';

const run = promisify(execFile);

export const AI_GATEWAY_MODULE = 'github.com/envoyproxy/ai-gateway';
export const AI_GATEWAY_VERSION = `v${toolchain().AI_GATEWAY_VERSION ?? '1.0.0'}`;
/** The module's go.sum hash (h1:…), pinned beside the version: a different download is refused. */
export const AI_GATEWAY_SUM = toolchain().AI_GATEWAY_SUM;
const VERSION_PACKAGE = `${AI_GATEWAY_MODULE}/internal/version`;

export interface AiGatewayBuild {
  bin: string;
  /** The release tag the binary reports, which the filter config's `version` must equal. */
  version: string;
  /** What was stamped on its version package (its Makefile's `git describe --tags --long`). */
  stamp: string;
  /** The commands that built it, for the report. */
  commands: string[];
  /** Wall seconds of the build that produced this binary: module download plus compile, on
   * whatever module and build caches it found. Null when AI_GATEWAY_EXTPROC_BIN was given. */
  buildS: number | null;
  /** Whether this run reused a binary built earlier (then buildS is that build's). */
  cached: boolean;
  go: string;
}

interface BuildRecord {
  version: string;
  stamp: string;
  sum: string;
  commands: string[];
  buildS: number;
  go: string;
  builtAt: string;
}

/** AI_GATEWAY_EXTPROC_BIN, else the pinned version in .cache/ai-gateway-extproc-<version>/,
 * built there on first use (minutes on two cores: the module pulls in the AWS, Azure, GCP and
 * Kubernetes client libraries). */
export async function ensureAiGateway(log: (m: string) => void): Promise<AiGatewayBuild> {
  const fromEnv = process.env.AI_GATEWAY_EXTPROC_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`AI_GATEWAY_EXTPROC_BIN=${fromEnv} does not exist`);
    return {
      bin: fromEnv,
      version: AI_GATEWAY_VERSION,
      stamp: 'given by AI_GATEWAY_EXTPROC_BIN',
      commands: [],
      buildS: null,
      cached: true,
      go: 'unknown',
    };
  }
  const dir = join(ROOT, '.cache', `ai-gateway-extproc-${AI_GATEWAY_VERSION}`);
  const bin = join(dir, 'extproc');
  const recordFile = join(dir, 'build.json');
  if (existsSync(bin) && existsSync(recordFile)) {
    const rec = JSON.parse(await readFile(recordFile, 'utf8')) as BuildRecord;
    if (rec.version === AI_GATEWAY_VERSION && (!AI_GATEWAY_SUM || rec.sum === AI_GATEWAY_SUM)) {
      return {
        bin,
        version: rec.version,
        stamp: rec.stamp,
        commands: rec.commands,
        buildS: rec.buildS,
        cached: true,
        go: rec.go,
      };
    }
  }
  log(`building Envoy AI Gateway ${AI_GATEWAY_VERSION} cmd/extproc from its Go module into .cache/ (a few minutes)`);
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const go = await goCmd(['version']);
  const download = ['mod', 'download', '-json', `${AI_GATEWAY_MODULE}@${AI_GATEWAY_VERSION}`];
  const mod = JSON.parse(await goCmd(download)) as {
    Dir?: string;
    Sum?: string;
    Error?: string;
    Origin?: { Hash?: string };
  };
  if (mod.Error || !mod.Dir)
    throw new Error(`go mod download ${AI_GATEWAY_MODULE}@${AI_GATEWAY_VERSION}: ${mod.Error}`);
  if (AI_GATEWAY_SUM && mod.Sum !== AI_GATEWAY_SUM)
    throw new Error(
      `${AI_GATEWAY_MODULE}@${AI_GATEWAY_VERSION} has sum ${mod.Sum}, scripts/toolchain.env pins ${AI_GATEWAY_SUM}`,
    );
  // `git describe --tags --long` on the tag itself: <tag>-0-g<abbreviated commit>. The commit
  // comes from the module proxy's origin record; without one, any hex stands in (a build on the
  // tag reports the tag alone, so the sha is not part of what the config must match).
  const sha = (mod.Origin?.Hash ?? '0000000').slice(0, 9);
  const stamp = `${AI_GATEWAY_VERSION}-0-g${sha}`;
  const tmp = `${bin}.${process.pid}.tmp`;
  const build = [
    '-C',
    mod.Dir,
    'build',
    '-mod=readonly',
    '-trimpath',
    '-ldflags',
    `-X ${VERSION_PACKAGE}.version=${stamp}`,
    '-o',
    tmp,
    './cmd/extproc',
  ];
  await goCmd(build);
  await rename(tmp, bin);
  const buildS = Math.round((performance.now() - t0) / 100) / 10;
  const commands = [
    `go ${download.join(' ')}`,
    `go -C $(go env GOMODCACHE)/${AI_GATEWAY_MODULE}@${AI_GATEWAY_VERSION} build -mod=readonly -trimpath -ldflags '-X ${VERSION_PACKAGE}.version=${stamp}' -o .cache/ai-gateway-extproc-${AI_GATEWAY_VERSION}/extproc ./cmd/extproc`,
  ];
  const rec: BuildRecord = {
    version: AI_GATEWAY_VERSION,
    stamp,
    sum: mod.Sum ?? '',
    commands,
    buildS,
    go: go.trim(),
    builtAt: new Date().toISOString(),
  };
  await writeFile(recordFile, `${JSON.stringify(rec, null, 2)}\n`);
  log(`built AI Gateway extproc in ${buildS} s`);
  return { bin, version: AI_GATEWAY_VERSION, stamp, commands, buildS, cached: false, go: rec.go };
}

async function goCmd(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('go', args, {
      // Outside any Go module: `go mod download` of a module@version needs no go.mod.
      cwd: join(ROOT, '.cache'),
      env: { ...process.env, CGO_ENABLED: '0' },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('bench:peers builds AI Gateway with Go: put `go` on PATH or set AI_GATEWAY_EXTPROC_BIN');
    throw new Error(`go ${args.join(' ')} failed:\n${e.stderr ?? String(err)}`);
  }
}

export class BenchAiGateway extends BenchProcess {
  readonly name = 'ai_gateway';
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly configFile: string;
  constructor(proc: Proc, grpcPort: number, adminPort: number, configFile: string) {
    super(proc);
    this.grpcPort = grpcPort;
    this.adminPort = adminPort;
    this.configFile = configFile;
  }
  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`)).text();
  }
  /** Input plus output tokens it recorded (the sum of its gen_ai_client_token_usage histogram
   * over token types input and output), the counterpart of LM Gate's lmgate_tokens_total. */
  async tokensMetered(): Promise<number> {
    let sum = 0;
    for (const m of (await this.metrics()).matchAll(
      /^gen_ai_client_token_usage[a-z_]*_sum\{([^}]*)\} ([\d.eE+]+)$/gm,
    )) {
      if (/gen_ai_token_type="(input|output)"/.test(m[1]!)) sum += Number(m[2]);
    }
    return Math.round(sum);
  }
  /** SIGKILL: on SIGTERM it waits 15 s for a load balancer to notice (cmd/extproc/main.go);
   * nothing here needs a graceful stop, and CPU and RSS are read before. */
  stop(): Promise<number | null> {
    return this.proc.stop('SIGKILL');
  }
}

/** Starts the extproc on loopback with a filter config written to `dir`. Its admin server
 * (/metrics, /health) has a port flag but no address flag, so it listens on every interface;
 * pprof's fixed :6060 is turned off (DISABLE_PPROF), and OpenTelemetry exporters stay off (no
 * OTEL_* variables are passed). Log level warn, as the LM Gate profiles. */
export async function startAiGateway(build: AiGatewayBuild, dir: string): Promise<BenchAiGateway> {
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const configFile = join(dir, 'ai-gateway-filter-config.yaml');
  await writeFile(
    configFile,
    `# Envoy AI Gateway extproc filter config (internal/filterapi), written by bench/lib/ai-gateway.ts\n${stringify(aiGatewayFilterConfig(build.version))}`,
  );
  const env: NodeJS.ProcessEnv = { DISABLE_PPROF: '1' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_') && v !== undefined) env[k] = v;
  const proc = new Proc(
    'ai-gateway',
    build.bin,
    [
      '-configPath',
      configFile,
      '-extProcAddr',
      `127.0.0.1:${grpcPort}`,
      '-adminPort',
      String(adminPort),
      '-logLevel',
      'warn',
    ],
    env,
  );
  try {
    await waitFor('AI Gateway extproc', async () => {
      if (!proc.running) throw new ProcExited(proc);
      if (!proc.stderr.includes('AI Gateway External Processor is ready')) return undefined;
      return (await fetch(`http://127.0.0.1:${adminPort}/health`)).ok ? true : undefined;
    });
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return new BenchAiGateway(proc, grpcPort, adminPort, configFile);
}
