// Every Envoy config we ship is checked by the real Envoy binary in validate mode.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envoyVersion, extProcFilter, ROOT, renderEnvoyConfig, validateEnvoyConfig } from '../harness/envoy.ts';

describe('shipped Envoy config', () => {
  it(`envoy/envoy.yaml validates with ${envoyVersion()}`, () => {
    const r = validateEnvoyConfig(join(ROOT, 'envoy', 'envoy.yaml'));
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
  });

  it('the rendered test variant (free ports, Unix socket) validates too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lmg-envoy-'));
    const file = await renderEnvoyConfig(
      { listener: 1, admin: 2, gate: 3, model: 4, gateSocket: join(dir, 'g.sock') },
      join(dir, 'e.yaml'),
    );
    expect(validateEnvoyConfig(file).ok).toBe(true);
  });

  it('a broken variant is rejected (the check can fail)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lmg-envoy-'));
    const file = await renderEnvoyConfig({ listener: 1, admin: 2, gate: 3, model: 4 }, join(dir, 'e.yaml'), (cfg) => {
      extProcFilter(cfg).processing_mode.request_body_mode = 'SOMETIMES';
    });
    expect(validateEnvoyConfig(file).ok).toBe(false);
  });

  it('ships the filter settings the gate relies on', async () => {
    const { parse } = await import('yaml');
    const { readFile } = await import('node:fs/promises');
    const cfg = parse(await readFile(join(ROOT, 'envoy', 'envoy.yaml'), 'utf8'));
    const f = extProcFilter(cfg);
    expect(f.failure_mode_allow).toBe(false);
    expect(f.allow_mode_override).toBe(true);
    expect(f.processing_mode).toMatchObject({ request_body_mode: 'BUFFERED', response_body_mode: 'NONE' });
    expect(f.metadata_options.receiving_namespaces.untyped).toContain('lm_gate');
  });
});
