// Every Envoy config we ship is checked by the real Envoy binary in validate mode.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PEER_ATTRIBUTES } from '../../extproc/server/attributes.ts';
import { Pki } from '../harness/certs.ts';
import {
  envoyVersion,
  extProcFilter,
  mtlsListenerFiles,
  ROOT,
  renderEnvoyConfig,
  validateEnvoyConfig,
} from '../harness/envoy.ts';

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
    // Envoy's own headers on each gate stream cost the gate GC time and say nothing it reads.
    expect(f.grpc_service.envoy_grpc.skip_envoy_headers).toBe(true);
    expect(f.allow_mode_override).toBe(true);
    expect(f.processing_mode).toMatchObject({ request_body_mode: 'BUFFERED', response_body_mode: 'NONE' });
    expect(f.metadata_options.receiving_namespaces.untyped).toContain('lm_gate');
  });
});

describe('shipped mTLS Envoy config (envoy/envoy-mtls.yaml)', () => {
  const load = async (name: string) => {
    const { parse } = await import('yaml');
    const { readFile } = await import('node:fs/promises');
    return parse(await readFile(join(ROOT, 'envoy', name), 'utf8'));
  };

  it(`validates with ${envoyVersion()}, its certificate paths pointed at a test PKI`, async () => {
    const pki = await Pki.create();
    const ca = await pki.ca('client-ca');
    const server = await pki.issue('server', ca, {
      subject: '/CN=localhost',
      sans: ['DNS:localhost'],
      usage: 'server',
    });
    const dir = await mkdtemp(join(tmpdir(), 'lmg-envoy-'));
    const file = await renderEnvoyConfig(
      { listener: 1, admin: 2, gate: 3, model: 4 },
      join(dir, 'e.yaml'),
      (cfg) => mtlsListenerFiles(cfg, { cert: server.cert, key: server.key, clientCa: ca.cert }),
      'envoy-mtls.yaml',
    );
    const r = validateEnvoyConfig(file);
    expect(r.output).toContain('OK');
    expect(r.ok).toBe(true);
  });

  it('requires and verifies client certificates, sanitises and sets XFCC, and sends the attributes the gate reads', async () => {
    const cfg = await load('envoy-mtls.yaml');
    const chain = cfg.static_resources.listeners[0].filter_chains[0];
    const tls = chain.transport_socket.typed_config;
    expect(tls.require_client_certificate).toBe(true);
    expect(tls.common_tls_context.validation_context.trusted_ca.filename).toBeTruthy();
    expect(JSON.stringify(tls)).not.toContain('ACCEPT_UNTRUSTED');
    const hcm = chain.filters[0].typed_config;
    expect(hcm.forward_client_cert_details).toBe('SANITIZE_SET');
    expect(hcm.set_current_client_cert_details).toMatchObject({ uri: true, subject: true });
    expect(extProcFilter(cfg).request_attributes).toEqual(Object.values(PEER_ATTRIBUTES));
  });

  it('is envoy/envoy.yaml but for the listener port and the three mTLS additions', async () => {
    const plain = await load('envoy.yaml');
    const mtls = await load('envoy-mtls.yaml');
    const listener = mtls.static_resources.listeners[0];
    listener.address.socket_address.port_value = plain.static_resources.listeners[0].address.socket_address.port_value;
    delete listener.filter_chains[0].transport_socket;
    const hcm = listener.filter_chains[0].filters[0].typed_config;
    delete hcm.forward_client_cert_details;
    delete hcm.set_current_client_cert_details;
    delete extProcFilter(mtls).request_attributes;
    expect(mtls).toEqual(plain);
  });
});
