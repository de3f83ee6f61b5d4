// Node's fetch implementation (undici, ~2.3 MiB of heap) is not loaded by
// starting the gate: an ES import of node:http would load it (admin.ts says why), and only the
// optional HTTP clients (JWKS, OPA, the limits webhook, the classifier) need it, when they fetch.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lastLineInFreshProcess } from '../../test/harness/fresh-process.ts';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));
const admin = fileURLToPath(new URL('./admin.ts', import.meta.url));

/** In a fresh process: import the gate's entry module and start the admin server, then say
 * whether Node has loaded undici; with `fetch`, after one fetch too (the test's control). */
async function undiciLoaded(fetchToo: boolean): Promise<boolean> {
  const line = await lastLineInFreshProcess(`
    process.argv = [process.argv[0], 'lm-gate', 'check-config', '/nonexistent'];
    await import(${JSON.stringify(main)});
    const { startAdminServer } = await import(${JSON.stringify(admin)});
    const { server, port } = await startAdminServer('127.0.0.1:0', { metricsText: async () => '' }, { ready: () => ({ ready: true }) });
    if (${fetchToo}) await fetch('http://127.0.0.1:' + port + '/healthz');
    server.close();
    process.on('exit', () => { process.exitCode = 0; }); // check-config's own failure
    console.log(process.moduleLoadList.some((m) => m.includes('undici')));`);
  return line === 'true';
}

describe('fetch implementation loading', () => {
  it('is not loaded by the gate and its admin server, and is by a fetch', async () => {
    expect(await undiciLoaded(false)).toBe(false);
    expect(await undiciLoaded(true)).toBe(true);
  }, 60_000);
});
