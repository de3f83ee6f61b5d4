// protobufjs is loaded when a test or tool first uses the reflected ext_proc types, not by the
// gate: its server, stream codecs and health checks are hand-written, and the library with the
// root it builds is ~3 MiB of heap (README "Levers tried").
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lastLineInFreshProcess } from '../../test/harness/fresh-process.ts';

const server = fileURLToPath(new URL('./grpc-server.ts', import.meta.url));
const health = fileURLToPath(new URL('./health-codec.ts', import.meta.url));
const protocol = fileURLToPath(new URL('./protocol.ts', import.meta.url));

/** In a fresh process: import the gate's server, answer a health check, optionally encode a
 * request with the reflected types, and say whether protobufjs is in Node's CommonJS cache. */
async function protobufjsLoaded(reflect: boolean): Promise<boolean> {
  const line = await lastLineInFreshProcess(`
    await import(${JSON.stringify(server)});
    const h = await import(${JSON.stringify(health)});
    h.decodeCheckRequest(h.encodeCheckRequest({ service: 'x' }));
    h.encodeCheckResponse({ status: 1 });
    if (${reflect}) (await import(${JSON.stringify(protocol)})).encodeProcessingRequest({ requestHeaders: {} });
    console.log(loaded('protobufjs'));`);
  return line === 'true';
}

describe('protobufjs loading', () => {
  it('is not loaded by the gate or its health checks, and is by the reflected types', async () => {
    expect(await protobufjsLoaded(false)).toBe(false);
    expect(await protobufjsLoaded(true)).toBe(true);
  }, 60_000);
});
