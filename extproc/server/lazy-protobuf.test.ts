// protobufjs is loaded when a test or tool first uses the reflected ext_proc types, not by the
// gate: its server, stream codecs and health checks are hand-written, and the library with the
// root it builds is ~3 MiB of heap (README "Levers tried").
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const server = fileURLToPath(new URL('./grpc-server.ts', import.meta.url));
const health = fileURLToPath(new URL('./health-codec.ts', import.meta.url));
const protocol = fileURLToPath(new URL('./protocol.ts', import.meta.url));

/** In a fresh process: import the gate's server, answer a health check, optionally encode a
 * request with the reflected types, and say whether protobufjs is in Node's CommonJS cache. */
async function protobufjsLoaded(reflect: boolean): Promise<boolean> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(server)});
    const h = await import(${JSON.stringify(health)});
    h.decodeCheckRequest(h.encodeCheckRequest({ service: 'x' }));
    h.encodeCheckResponse({ status: 1 });
    if (${reflect}) (await import(${JSON.stringify(protocol)})).encodeProcessingRequest({ requestHeaders: {} });
    const cache = createRequire(import.meta.url).cache;
    console.log(Object.keys(cache).some((k) => k.includes('/node_modules/protobufjs/')));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
  return stdout.trim() === 'true';
}

describe('protobufjs loading', () => {
  it('is not loaded by the gate or its health checks, and is by the reflected types', async () => {
    expect(await protobufjsLoaded(false)).toBe(false);
    expect(await protobufjsLoaded(true)).toBe(true);
  }, 60_000);
});
