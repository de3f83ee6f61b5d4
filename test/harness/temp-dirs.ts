// Temporary folders for gate configs, audit logs and Envoy bootstraps. Each test file's are
// removed after its last test (test/harness/cleanup.ts, a vitest setup file): vitest ends its
// workers without an 'exit' event, so a removal tied to process exit never ran and every run
// left its folders in /tmp. A test may still read a stopped gate's audit log until then.
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();

/** A new folder under the OS temp dir, removed by removeTempDirs (or at process exit). */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
  made.clear();
}

// Scripts that end normally (the bench, a quickstart that failed to start) remove theirs too.
process.once('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});
