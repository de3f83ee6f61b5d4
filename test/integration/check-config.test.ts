// `lm-gate check-config` as an operator runs it, through the package's bin: the shipped example
// passes (exit 0), and a broken config fails naming the field (exit 1).
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { ROOT } from '../harness/envoy.ts';

const run = promisify(execFile);

/** The environment without the example's LMGATE_* variables, so its ${NAME:-default}s apply. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LMGATE_')));

function checkConfig(file: string) {
  return run(process.execPath, [join(ROOT, 'bin', 'lm-gate.js'), 'check-config', file], { cwd: ROOT, env });
}

it('examples/lm-gate.yaml passes check-config', async () => {
  const { stdout } = await checkConfig('examples/lm-gate.yaml');
  expect(stdout).toBe('examples/lm-gate.yaml: ok (3 API keys)\n');
});

it('a config with a bad field fails check-config with exit 1, naming the field', async () => {
  const file = join(await mkdtemp(join(tmpdir(), 'lmg-check-')), 'bad.yaml');
  await writeFile(file, 'server:\n  grpcAddress: localhost\n');
  const err = await checkConfig(file).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  expect(err?.code).toBe(1);
  expect(err?.stderr).toContain('server.grpcAddress: expected host:port');
});
