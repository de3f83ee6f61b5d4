// The image's install steps, run as written: no container engine runs on this machine kind, so
// test/harness/dockerfile.ts executes the Dockerfile's COPY and RUN steps stage by stage in a clean
// directory (the build context filtered by .dockerignore), and the gate is started from the final
// stage with its ENTRYPOINT, ENV and working directory. Proves the image would hold a compiled
// gate that starts and serves, with production dependencies only.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type BuildResult, buildDockerfile, dockerignore, listFiles, parseDockerfile } from '../harness/dockerfile.ts';
import { ROOT } from '../harness/envoy.ts';
import { freePort, waitFor } from '../harness/ports.ts';
import { Proc } from '../harness/processes.ts';
import { tempDir } from '../harness/temp-dirs.ts';
import { toolchain } from '../harness/toolchain.ts';

let built: BuildResult;
let buildSeconds: number;
let gate: Proc | undefined;

beforeAll(async () => {
  const t0 = performance.now();
  built = await buildDockerfile(ROOT, await tempDir('lmg-image-'), {
    pathPrefix: dirname(process.execPath),
    // npm reads the packages from its cache when it has them (the project's own install put them
    // there); it still checks them against the lockfile's integrity hashes.
    env: { npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
  });
  buildSeconds = Math.round((performance.now() - t0) / 100) / 10;
}, 10 * 60_000);

afterAll(async () => {
  await gate?.stop('SIGTERM');
});

describe('Dockerfile', () => {
  it('is multi-stage on the pinned Node 24 LTS, and the runtime runs the compiled gate as a numeric non-root user', async () => {
    const { NODE_VERSION } = toolchain();
    expect(built.stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    for (const s of built.stages) expect(s.from).toBe(`node:${NODE_VERSION}-bookworm-slim`);
    expect(process.versions.node).toBe(NODE_VERSION);
    const rt = built.final;
    expect(rt.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(rt.entrypoint).toEqual(['node', '/app/dist/extproc/main.js']);
    expect(rt.workdir).toBe('/app');
    expect(rt.env.NODE_OPTIONS).toBe('--max-semi-space-size=4');
    expect(rt.expose).toEqual(['50051', '9901']);
    console.log(
      `image steps: ${buildSeconds} s (${built.runs.map((r) => `${r.command.split(' ').slice(0, 3).join(' ')}: ${r.seconds} s`).join('; ')})`,
    );
  });

  it('the runtime holds compiled JavaScript, the protos and production dependencies only', async () => {
    const app = join(built.final.root, built.final.workdir);
    const files = await listFiles(app);
    const dist = files.filter((f) => f.startsWith('dist/'));
    expect(dist).toContain('dist/extproc/main.js');
    expect(dist.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(dist.some((f) => f.startsWith('dist/protos/envoy/service/ext_proc/v3/'))).toBe(true);
    expect(dist.filter((f) => f.includes('.test.'))).toEqual([]);
    // The lockfile marks each package only the dev dependencies pull in ("dev": true): none may
    // be in the image, and every direct dependency must be.
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const installed = new Set(
      files
        .filter((f) => f.startsWith('node_modules/') && f.endsWith('/package.json'))
        .map((f) => f.slice(0, -'/package.json'.length)),
    );
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path && p.dev);
    expect(devOnly.length).toBeGreaterThan(0);
    expect(devOnly.map(([path]) => path).filter((path) => installed.has(path))).toEqual([]);
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies)) expect(installed.has(`node_modules/${dep}`), dep).toBe(true);
    // No sources, tests, caches or local state travel in the image.
    expect(files.filter((f) => /^(extproc|test|bench|\.cache|\.venv)\//.test(f))).toEqual([]);
  });

  it('starts from the result: ENTRYPOINT with a config, serving /readyz, /metrics and gRPC', async () => {
    const rt = built.final;
    const dir = await tempDir('lmg-image-run-');
    const grpc = await freePort();
    const admin = await freePort();
    const config = join(dir, 'lm-gate.yaml');
    await writeFile(
      config,
      stringify({
        server: { grpcAddress: `127.0.0.1:${grpc}`, adminAddress: `127.0.0.1:${admin}` },
        audit: { path: join(dir, 'audit.log') },
        identity: { apiKeys: [] },
      }),
    );
    const [cmd, script] = rt.entrypoint as [string, string];
    expect(cmd).toBe('node');
    // The image's absolute path, inside the directory standing for the image's root.
    gate = new Proc(
      'image-gate',
      process.execPath,
      [join(rt.root, script), 'serve', '-c', config],
      {
        ...process.env,
        ...rt.env,
      },
      { cwd: join(rt.root, rt.workdir) },
    );
    await waitFor('the image gate ready', async () => {
      if (!gate?.running) throw new Error(`gate exited\n${gate?.describe()}`);
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    });
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(metrics).toContain('lmgate_requests_total');
    expect(gate.stderr).toContain('lm-gate serving');
    // Not the TypeScript sources: the process runs the compiled dist/.
    expect(script).toMatch(/\/dist\/extproc\/main\.js$/);
  }, 60_000);
});

describe('.dockerignore', () => {
  it('keeps only what the Dockerfile copies, and the runner refuses instructions it does not know', async () => {
    const ignored = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'));
    for (const p of [
      'extproc/main.ts',
      'protos/envoy/service/ext_proc/v3/external_processor.proto',
      'package-lock.json',
    ])
      expect(ignored(p), p).toBe(false);
    for (const p of [
      'extproc/main.test.ts',
      'node_modules/yaml/package.json',
      '.cache/go/x',
      'bench/run.ts',
      '.git/HEAD',
      'dist/extproc/main.js',
    ])
      expect(ignored(p), p).toBe(true);
    expect(parseDockerfile('FROM x AS y\nRUN a \\\n  b\n').map((i) => [i.op, i.args])).toEqual([
      ['FROM', 'x AS y'],
      ['RUN', 'a    b'],
    ]);
    const dir = await tempDir('lmg-image-bad-');
    await writeFile(join(dir, 'Dockerfile'), 'FROM node:24 AS a\nADD https://example.com/x /x\n');
    await expect(
      buildDockerfile(dir, await tempDir('lmg-image-bad-work-'), { pathPrefix: '/nonexistent' }),
    ).rejects.toThrow(/ADD is not an instruction this runner knows/);
  });
});
