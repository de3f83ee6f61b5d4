// End to end with client certificates: a real mTLS handshake with the real Envoy
// (envoy/envoy-mtls.yaml, its certificate paths pointed at a PKI made here with openssl), the
// gate in its own process, the mock model server. Each certificate's identity reaches the gate
// the way an operator would configure it: the ext_proc request attributes, or the
// x-forwarded-client-cert header Envoy sanitises and sets.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../extproc/identity/api-keys.ts';
import { type Ca, type IssuedCert, Pki } from '../harness/certs.ts';
import { envoyVersion, mtlsListenerFiles } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { freePort, waitFor } from '../harness/ports.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const ops = makeKey('ops', { tenant: 'ops-tenant' });
const BILLING_ID = 'spiffe://example.org/ns/prod/sa/billing';
const spiffe = [
  {
    trustDomain: 'example.org',
    path: '/ns/{ns}/sa/{sa}',
    tenant: '{ns}',
    team: 'platform',
    user: '{sa}',
    roles: ['service'],
  },
];

interface Certs {
  ca: Ca;
  server: IssuedCert;
  billing: IssuedCert;
  noUri: IssuedCert;
  twoUris: IssuedCert;
  otherDomain: IssuedCert;
  batch: IssuedCert;
  untrusted: IssuedCert;
}

let certs: Certs;

beforeAll(async () => {
  console.log(`mTLS e2e against real Envoy: ${envoyVersion()}`);
  const pki = await Pki.create();
  const ca = await pki.ca('client-ca');
  const evil = await pki.ca('untrusted-ca');
  const client = (name: string, subject: string, sans: string[] = [], issuer = ca) =>
    pki.issue(name, issuer, { subject, sans });
  certs = {
    ca,
    server: await pki.issue('server', ca, {
      subject: '/CN=localhost',
      sans: ['DNS:localhost', 'IP:127.0.0.1'],
      usage: 'server',
    }),
    billing: await client('billing', '/O=Acme/CN=billing', [`URI:${BILLING_ID}`]),
    noUri: await client('no-uri', '/O=Acme/CN=nouri'),
    twoUris: await client('two-uris', '/CN=two', [
      'URI:spiffe://example.org/ns/a/sa/x',
      'URI:spiffe://example.org/ns/b/sa/y',
    ]),
    otherDomain: await client('other-domain', '/CN=other', ['URI:spiffe://other.org/ns/prod/sa/billing']),
    batch: await client('batch', '/O=Acme/OU=batch/CN=nightly'),
    untrusted: await client('untrusted', '/O=Acme/CN=billing', [`URI:${BILLING_ID}`], evil),
  };
});

interface Answer {
  status: number;
  body: string;
}

/** One request on its own connection (so each carries the certificate given), with its own
 * x-request-id, which Envoy keeps and the audit record carries. */
function send(
  port: number,
  opts: { cert?: IssuedCert; headers?: Record<string, string>; body?: object; tls?: boolean },
): Promise<Answer> {
  const body = opts.body ? Buffer.from(JSON.stringify(opts.body)) : undefined;
  const headers = {
    ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
    ...opts.headers,
  };
  const common = {
    host: '127.0.0.1',
    port,
    method: body ? 'POST' : 'GET',
    path: body ? '/v1/chat/completions' : '/v1/models',
    headers,
    agent: false as const,
  };
  return new Promise((resolve, reject) => {
    const req =
      opts.tls === false
        ? httpRequest(common)
        : httpsRequest({
            ...common,
            servername: 'localhost',
            ca: certs.ca.pem,
            ...(opts.cert ? { cert: opts.cert.pem, key: keys.get(opts.cert)! } : {}),
          });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const keys = new Map<IssuedCert, string>();
async function loadKeys(): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  for (const c of Object.values(certs)) keys.set(c, await readFile(c.key, 'utf8'));
}

const chat = { model: 'mock-small', messages: [{ role: 'user', content: 'hello over mTLS' }] };

/** The request's audit records, once the first is written: exactly one is expected. */
async function auditRecords(stack: Stack, id: string): Promise<Record<string, any>[]> {
  await stack.gate.auditFor(id);
  return (await stack.gate.audit()).filter((r) => r.request_id === id);
}

async function startMtlsStack(mtls: Record<string, unknown>, editEnvoy?: (cfg: Record<string, any>) => void) {
  await loadKeys();
  return startStack({
    keys: [],
    envoyBase: 'envoy-mtls.yaml',
    gateExtra: { identity: { apiKeys: [{ id: ops.id, sha256: hashApiKey(ops.key), tenant: ops.tenant }], mtls } },
    editEnvoy: (cfg) => {
      mtlsListenerFiles(cfg, { cert: certs.server.cert, key: certs.server.key, clientCa: certs.ca.cert });
      editEnvoy?.(cfg);
    },
  });
}

let seq = 0;
const rid = (what: string) => `mtls-${what}-${++seq}`;

describe('mTLS through real Envoy, identity from the ext_proc request attributes', () => {
  let stack: Stack;
  let plainPort: number;

  beforeAll(async () => {
    plainPort = await freePort();
    stack = await startMtlsStack(
      {
        source: 'attributes',
        spiffe,
        subjects: [
          { issuer: 'corp-client-ca', match: { O: 'Acme', OU: 'batch', CN: '{cn}' }, tenant: 'acme', user: '{cn}' },
        ],
      },
      (cfg) => {
        // A second listener without TLS whose Envoy passes a client's x-forwarded-client-cert
        // through untouched (ALWAYS_FORWARD_ONLY), as a proxy in front that forgot to sanitise
        // would: the gate itself must not take the header's word.
        const plain = structuredClone(cfg.static_resources.listeners[0]);
        plain.name = 'plain';
        plain.address.socket_address.port_value = plainPort;
        delete plain.filter_chains[0].transport_socket;
        const hcm = plain.filter_chains[0].filters[0].typed_config;
        hcm.forward_client_cert_details = 'ALWAYS_FORWARD_ONLY';
        delete hcm.set_current_client_cert_details;
        cfg.static_resources.listeners.push(plain);
      },
    );
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a SPIFFE client certificate maps to its principal: upstream gets x-lmgate-tenant, the audit says mtls', async () => {
    const id = rid('spiffe');
    const res = await send(stack.envoy.ports.listener, {
      cert: certs.billing,
      body: chat,
      headers: { 'x-request-id': id },
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).choices[0].message.content).toContain('Hello');

    const upstream = stack.mock.received.find((r) => r.headers['x-request-id'] === id);
    expect(upstream?.headers['x-lmgate-tenant']).toBe('prod');
    expect(upstream?.headers['x-lmgate-principal']).toBe(BILLING_ID);
    // Envoy set x-forwarded-client-cert (SANITIZE_SET); with the attributes source the gate
    // does not use it and removes it before the model server.
    expect(upstream?.headers['x-forwarded-client-cert']).toBeUndefined();

    const records = await auditRecords(stack, id);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      outcome: 'completed',
      status: 200,
      principal: {
        id: BILLING_ID,
        key_id: null,
        tenant: 'prod',
        team: 'platform',
        user: 'billing',
        method: 'mtls',
        issuer: 'example.org',
      },
    });
  });

  it('a certificate without a URI SAN maps by its subject when a subject rule matches', async () => {
    const id = rid('subject');
    const res = await send(stack.envoy.ports.listener, { cert: certs.batch, headers: { 'x-request-id': id } });
    expect(res.status).toBe(200);
    const [rec] = await auditRecords(stack, id);
    expect(rec?.principal).toMatchObject({
      id: 'CN=nightly,OU=batch,O=Acme',
      tenant: 'acme',
      user: 'nightly',
      method: 'mtls',
      issuer: 'corp-client-ca',
    });
  });

  const refusals: [string, keyof Certs][] = [
    ['two URI SANs (the attribute shows only the first) are ambiguous', 'twoUris'],
    ['no URI SAN and no subject rule that matches', 'noUri'],
    ['a trust domain not configured', 'otherDomain'],
  ];
  for (const [name, cert] of refusals) {
    it(`${name}: 401 invalid_client_certificate, one audit record, nothing upstream`, async () => {
      const id = rid(cert);
      const res = await send(stack.envoy.ports.listener, {
        cert: certs[cert],
        body: chat,
        headers: { 'x-request-id': id },
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).error).toMatchObject({
        code: 'invalid_client_certificate',
        type: 'authentication_error',
      });
      const records = await auditRecords(stack, id);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ outcome: 'rejected', status: 401, principal: null });
      expect(stack.mock.received.some((r) => r.headers['x-request-id'] === id)).toBe(false);
    });
  }

  it('a certificate from a CA the listener does not trust fails the handshake at Envoy: the gate never sees it', async () => {
    const id = rid('untrusted');
    await expect(
      send(stack.envoy.ports.listener, { cert: certs.untrusted, body: chat, headers: { 'x-request-id': id } }),
    ).rejects.toThrow();
    await expect(
      send(stack.envoy.ports.listener, { body: chat, headers: { 'x-request-id': `${id}-none` } }),
    ).rejects.toThrow();
    await waitFor('Envoy to count the failed verification', async () =>
      /ssl\.fail_verify_error: [1-9]/.test(await stack.envoy.stats()) ? true : undefined,
    );
    // The audit is written for every request that reached the gate; these never did.
    const ok = rid('after-untrusted');
    await send(stack.envoy.ports.listener, { cert: certs.billing, headers: { 'x-request-id': ok } });
    await stack.gate.auditFor(ok);
    expect((await stack.gate.audit()).filter((r) => String(r.request_id).startsWith(id))).toEqual([]);
  });

  it('a bearer credential on an mTLS connection is judged as it would be without one', async () => {
    const id = rid('bearer');
    const ok = await send(stack.envoy.ports.listener, {
      cert: certs.billing,
      headers: { 'x-request-id': id, authorization: `Bearer ${ops.key}` },
    });
    expect(ok.status).toBe(200);
    expect((await auditRecords(stack, id))[0]?.principal).toMatchObject({ id: 'ops', method: 'api_key' });

    const bad = await send(stack.envoy.ports.listener, {
      cert: certs.billing,
      headers: { authorization: 'Bearer lmg_not-a-key' },
    });
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.body).error.code).toBe('invalid_api_key');
  });

  it('a spoofed x-forwarded-client-cert from a client without a certificate gets no principal, and never goes upstream', async () => {
    const spoof = `Hash=00;Subject="CN=billing,O=Acme";URI=${BILLING_ID}`;
    const id = rid('spoof');
    const res = await send(plainPort, {
      tls: false,
      headers: { 'x-request-id': id, 'x-forwarded-client-cert': spoof },
    });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).error.code).toBe('missing_api_key');
    const records = await auditRecords(stack, id);
    expect(records).toHaveLength(1);
    expect(records[0]?.principal).toBeNull();

    const withKey = rid('spoof-key');
    const ok = await send(plainPort, {
      tls: false,
      headers: { 'x-request-id': withKey, 'x-forwarded-client-cert': spoof, authorization: `Bearer ${ops.key}` },
    });
    expect(ok.status).toBe(200);
    const upstream = stack.mock.received.find((r) => r.headers['x-request-id'] === withKey);
    expect(upstream?.headers['x-forwarded-client-cert']).toBeUndefined();
    expect((await auditRecords(stack, withKey))[0]?.principal).toMatchObject({ id: 'ops', method: 'api_key' });
  });
});

describe('mTLS through real Envoy, identity from x-forwarded-client-cert (SANITIZE_SET)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startMtlsStack({ source: 'xfcc', envoyForwardClientCertDetails: 'SANITIZE_SET', spiffe });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('the certificate decides, not a header the client wrote: Envoy replaces a spoofed one', async () => {
    const id = rid('xfcc-spoof');
    const res = await send(stack.envoy.ports.listener, {
      cert: certs.billing,
      headers: { 'x-request-id': id, 'x-forwarded-client-cert': 'URI=spiffe://example.org/ns/prod/sa/admin' },
    });
    expect(res.status).toBe(200);
    const [rec] = await auditRecords(stack, id);
    expect(rec?.principal).toMatchObject({ id: BILLING_ID, tenant: 'prod', method: 'mtls', issuer: 'example.org' });
    // The header Envoy set goes on to the model server, as Envoy intends for the next hop.
    const upstream = stack.mock.received.find((r) => r.headers['x-request-id'] === id);
    expect(upstream?.headers['x-forwarded-client-cert']).toContain(`URI=${BILLING_ID}`);
    expect(upstream?.headers['x-lmgate-tenant']).toBe('prod');
  });

  const refusals: [string, keyof Certs][] = [
    ['two URI SANs (two URI= in the header) are ambiguous', 'twoUris'],
    ['no URI SAN (an empty URI=)', 'noUri'],
    ['a trust domain not configured', 'otherDomain'],
  ];
  for (const [name, cert] of refusals) {
    it(`${name}: 401, one audit record`, async () => {
      const id = rid(`xfcc-${cert}`);
      const res = await send(stack.envoy.ports.listener, {
        cert: certs[cert],
        // A spoofed header must not rescue it either.
        headers: { 'x-request-id': id, 'x-forwarded-client-cert': `URI=${BILLING_ID}` },
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).error.code).toBe('invalid_client_certificate');
      const records = await auditRecords(stack, id);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ outcome: 'rejected', principal: null });
    });
  }
});
