// jose is imported when a config with JWT issuers makes an authenticator (or the audit sink
// signs a checkpoint), not by importing the gate: an API-key gate keeps its ~0.6 MiB of heap
// out (README "Levers tried").
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lastLineInFreshProcess } from '../../../test/harness/fresh-process.ts';

const here = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));

/** In a fresh process: import the gate's server and audit sink, parse `yaml`, make its JWT
 * authenticator (the identity stage does, per config snapshot), let imports settle and say
 * whether any module of jose was loaded. */
async function joseLoaded(yaml: string): Promise<boolean> {
  const line = await lastLineInFreshProcess(`
    await import(${here('../../server/grpc-server.ts')});
    await import(${here('../../audit/sink.ts')});
    const { parseConfig } = await import(${here('../../config/load.ts')});
    const { createJwtAuthenticator } = await import(${here('./authenticator.ts')});
    const { KeyRegistry } = await import(${here('./key-registry.ts')});
    const { Metrics } = await import(${here('../../telemetry/metrics.ts')});
    const logger = { warn() {}, info() {}, error() {}, debug() {} };
    const registry = new KeyRegistry({
      metrics: new Metrics({ defaultMetrics: false }),
      logger,
      clock: { now: () => Date.now() },
      fetchJson: () => new Promise(() => {}),
    });
    createJwtAuthenticator(parseConfig(${JSON.stringify(yaml)}, 'test.yaml', {}), registry, logger, () => Date.now());
    await new Promise((r) => setTimeout(r, 200));
    console.log(loaded('jose'));
    process.exit(0);`);
  return line === 'true';
}

describe('jose loading', () => {
  it('is not loaded for a config without JWT issuers, and is once one makes an authenticator', async () => {
    expect(await joseLoaded('{}')).toBe(false);
    expect(
      await joseLoaded(
        "identity: { jwt: { issuers: [{ issuer: 'https://idp.test', audiences: [lm-gate], tenant: acme }] } }",
      ),
    ).toBe(true);
  }, 60_000);
});
