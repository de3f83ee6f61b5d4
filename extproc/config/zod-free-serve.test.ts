// A serving gate never loads zod: `serve` validates its config, at start and on every reload, in
// a short-lived loader process (load-in-child.ts), and nothing the gate runs imports a module
// that imports zod. zod and the config schemas are ~8 MiB of live heap in an idle gate, about
// twice that in peak RSS under load (README "Levers tried").
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lastLineInFreshProcess } from '../../test/harness/fresh-process.ts';
import { freePort } from '../../test/harness/ports.ts';
import { tempDir } from '../../test/harness/temp-dirs.ts';
import { hashApiKey } from '../identity/api-keys.ts';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));
const load = fileURLToPath(new URL('./load.ts', import.meta.url));
const governed = fileURLToPath(new URL('../../bench/profiles/governed.yaml', import.meta.url));

describe('zod in a serving gate', () => {
  it('is not loaded in the main isolate after start and a reload, governed profile', async () => {
    const dir = await tempDir('lmg-zod-free-');
    const config = join(dir, 'gate.yaml');
    const text = await readFile(governed, 'utf8');
    await writeFile(config, text);
    const [grpc, admin] = [await freePort(), await freePort()];
    const env = {
      LMG_GRPC_PORT: String(grpc),
      LMG_ADMIN_PORT: String(admin),
      LMG_AUDIT_PATH: join(dir, 'audit.log'),
      LMG_BENCH_KEY_SHA256: hashApiKey('lmg_bench_not-a-real-key'),
    };
    // The reload changes a rate limit: applied without a restart, and the gate logs nothing at
    // warn, so the last line printed is the test's.
    const reloaded = text.replace('limit: 10000000, per: minute', 'limit: 20000000, per: minute');
    expect(reloaded).not.toBe(text);
    const line = await lastLineInFreshProcess(`
      import { writeFile } from 'node:fs/promises';
      Object.assign(process.env, ${JSON.stringify(env)});
      process.argv = [process.execPath, ${JSON.stringify(main)}, 'serve', '-c', ${JSON.stringify(config)}];
      const admin = 'http://127.0.0.1:${admin}';
      const poll = async (probe) => {
        for (let i = 0; i < 300; i++) {
          if (await probe().catch(() => false)) return true;
          await new Promise((r) => setTimeout(r, 100));
        }
        return false;
      };
      await import(${JSON.stringify(main)});
      const ready = await poll(async () => (await fetch(admin + '/readyz')).status === 200);
      await writeFile(${JSON.stringify(config)}, ${JSON.stringify(reloaded)});
      const applied = await poll(async () =>
        (await (await fetch(admin + '/metrics')).text()).includes('lmgate_config_reloads_total{result="applied"} 1'));
      const serving = loaded('zod');
      // The probe sees zod when something does load it (check-config's path).
      await import(${JSON.stringify(load)});
      console.log(JSON.stringify({ ready, applied, serving, afterLoad: loaded('zod') }));
      process.exit(0);`);
    expect(JSON.parse(line)).toEqual({ ready: true, applied: true, serving: false, afterLoad: true });
  }, 60_000);
});
