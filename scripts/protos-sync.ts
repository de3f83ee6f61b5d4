// Copies the Envoy ext_proc API, and exactly the protos it imports, from a pinned registry
// package into protos/. Reproducible: same package version in, same files out.
//
//   npm run protos:sync
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const SOURCE_PACKAGE = '@grpc/grpc-js-xds';
const SOURCE_VERSION = '1.14.1';
// The package keeps each upstream repository under deps/<name>; imports resolve against all.
const INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'];
const ROOTS = ['envoy/service/ext_proc/v3/external_processor.proto'];
// Ours, not synced: kept when the synced tree is replaced.
const OWN_FILES = ['grpc/health/v1/health.proto'];

const repo = join(dirname(new URL(import.meta.url).pathname), '..');
const out = join(repo, 'protos');
const work = mkdtempSync(join(tmpdir(), 'lm-gate-protos-'));
try {
  execFileSync('npm', ['pack', '--silent', `${SOURCE_PACKAGE}@${SOURCE_VERSION}`], {
    cwd: work,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  execFileSync('sh', ['-c', 'tar xzf *.tgz'], { cwd: work });
  const deps = join(work, 'package', 'deps');

  const resolve = (file: string): string => {
    for (const dir of INCLUDE_DIRS) {
      const p = join(deps, dir, file);
      if (existsSync(p)) return p;
    }
    // google/protobuf/*.proto are protobufjs built-ins; everything else must be found.
    if (file.startsWith('google/protobuf/')) return '';
    throw new Error(`import not found in ${SOURCE_PACKAGE}@${SOURCE_VERSION}: ${file}`);
  };

  const seen = new Map<string, string>();
  const queue = [...ROOTS];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    const path = resolve(file);
    seen.set(file, path);
    if (!path) continue;
    for (const m of readFileSync(path, 'utf8').matchAll(/^import\s+(?:public\s+)?"([^"]+)";/gm)) {
      queue.push(m[1] as string);
    }
  }

  const keep = new Map(OWN_FILES.filter((f) => existsSync(join(out, f))).map((f) => [f, readFileSync(join(out, f))]));
  rmSync(out, { recursive: true, force: true });
  const files = [...seen].filter(([, p]) => p).sort(([a], [b]) => a.localeCompare(b));
  for (const [file, path] of files) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    cpSync(path, join(out, file));
  }
  for (const [file, content] of keep) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    writeFileSync(join(out, file), content);
  }
  // Every upstream tree here (envoyproxy/envoy api, cncf/xds, googleapis, protoc-gen-validate)
  // is Apache-2.0, as is the package that carries them; its licence text travels with it.
  cpSync(join(repo, 'node_modules', '@grpc', 'grpc-js', 'LICENSE'), join(out, 'LICENSE'));
  writeFileSync(
    join(out, 'README.md'),
    `# protos

Envoy's external processing API (\`envoy.service.ext_proc.v3\`) and the protos it imports,
copied unmodified by \`npm run protos:sync\` (scripts/protos-sync.ts) from the \`deps/\` tree of the
registry package \`${SOURCE_PACKAGE}@${SOURCE_VERSION}\`, which vendors them from
envoyproxy/envoy (api/), cncf/xds, googleapis and bufbuild/protoc-gen-validate. All are
Apache-2.0; see LICENSE. \`google/protobuf/*\` are read from the protobufjs package.

Only the import closure of ${ROOTS.map((r) => `\`${r}\``).join(', ')} is kept (${files.length} files).
\`grpc/health/v1/health.proto\` is ours: the standard gRPC health-checking service definition.

Do not edit the synced files; change the pinned version in scripts/protos-sync.ts and re-run.
`,
  );
  console.log(`protos: ${files.length} files from ${SOURCE_PACKAGE}@${SOURCE_VERSION}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
