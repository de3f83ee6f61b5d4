// `npm run build`: the gate compiled to JavaScript under dist/ (or --out DIR), with the protos
// it loads at start beside it (DIR/protos), so `node dist/extproc/main.js serve -c FILE` runs
// without the TypeScript sources. Running compiled JS is what a deployment should do: Node's
// type stripping costs each isolate (the main thread, every parse and gate worker) its own
// WASM and module memory, about 36 MiB of RSS for an idle gate with one parse worker. The
// benches run the gate built this way (bench/lib/topology.ts). Comments are left out
// (tsconfig.build.json's removeComments): V8 keeps each module's source text on the heap, as
// two bytes a character when a file holds any character beyond Latin-1 (an arrow, a dash).
import { execFileSync } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = join(import.meta.dirname, '..');

/** Compiles extproc/ into `outDir` (emptied first) and copies protos/ beside it. */
export async function buildGate(outDir: string): Promise<void> {
  await rm(outDir, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      outDir,
    ],
    { stdio: 'inherit' },
  );
  await cp(join(ROOT, 'protos'), join(outDir, 'protos'), { recursive: true });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'dist') } } });
  await buildGate(resolve(values.out));
}
