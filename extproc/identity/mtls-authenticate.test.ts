// identity.authenticate with identity.mtls: the decision table for client certificates, through
// the real state machine (runStage), from both sources. Envoy's attributes and headers here are
// what Envoy 1.40 sent for these certificates (test/e2e/mtls.test.ts sends them for real).
import { describe, expect, it } from 'vitest';
import { NO_SAN, SPIFFE_BILLING, TWO_URIS } from '../../test/fixtures/client-certificates.ts';
import { runStage, type StageRun } from '../../test/harness/run-stage.ts';
import { generateApiKey, hashApiKey } from './api-keys.ts';

const key = generateApiKey('ops');
const apiKeys = [{ id: 'ops', sha256: hashApiKey(key), tenant: 'ops-tenant' }];

const spiffe = [
  {
    trustDomain: 'example.org',
    path: '/ns/{ns}/sa/{sa}',
    tenant: '{ns}',
    team: 'platform',
    user: '{sa}',
    roles: ['service', '{ns}-reader'],
  },
];
const subjects = [{ issuer: 'corp-ca', match: { O: 'Acme', CN: '{cn}' }, tenant: 'acme', user: '{cn}' }];
const viaAttributes = { source: 'attributes', spiffe, subjects };
const viaXfcc = { source: 'xfcc', envoyForwardClientCertDetails: 'SANITIZE_SET', spiffe, subjects };

/** The four attributes as Envoy sends them for a verified client certificate. */
const peer = (pem: string, uriSan: string | undefined, subject: string) => ({
  'connection.mtls': true,
  ...(uriSan ? { 'connection.uri_san_peer_certificate': uriSan } : {}),
  'connection.subject_peer_certificate': subject,
  'connection.peer_certificate': pem,
});
const BILLING = peer(SPIFFE_BILLING, 'spiffe://example.org/ns/prod/sa/billing', 'CN=billing,O=Acme');
// Envoy shows only the first of the two URI SANs in the attribute.
const TWO = peer(TWO_URIS, 'spiffe://example.org/ns/a/sa/x', 'CN=two');
const NO_URI = peer(NO_SAN, undefined, 'CN=nouri,O=Acme');

interface Row {
  name: string;
  mtls: Record<string, unknown>;
  headers?: Record<string, string>;
  attributes?: Record<string, string | boolean>;
  expect: (run: StageRun) => void;
}

const refused =
  (code: string, status = 401) =>
  (run: StageRun) => {
    expect(run.refused).toMatchObject({ status, code });
    expect(run.audit.principal).toBeNull();
    expect(run.audit.outcome).toBe(status === 500 ? 'error' : 'rejected');
  };
const notMapped = refused('invalid_client_certificate');

const billing = (run: StageRun) => {
  expect(run.refused).toBeUndefined();
  expect(run.ctx.principal).toEqual({
    id: 'spiffe://example.org/ns/prod/sa/billing',
    tenant: 'prod',
    team: 'platform',
    user: 'billing',
    roles: ['service', 'prod-reader'],
    attributes: { ns: 'prod', sa: 'billing' },
    method: 'mtls',
    issuer: 'example.org',
    scope: undefined,
  });
  expect(run.audit.principal).toEqual({
    id: 'spiffe://example.org/ns/prod/sa/billing',
    key_id: null,
    tenant: 'prod',
    team: 'platform',
    user: 'billing',
    roles: ['service', 'prod-reader'],
    method: 'mtls',
    issuer: 'example.org',
  });
  expect(run.upstream?.set).toMatchObject({
    'x-lmgate-tenant': 'prod',
    'x-lmgate-principal': 'spiffe://example.org/ns/prod/sa/billing',
  });
  expect(run.upstream?.set['x-lmgate-key-id']).toBeUndefined();
};

const bySubject = (run: StageRun) => {
  expect(run.refused).toBeUndefined();
  expect(run.ctx.principal).toMatchObject({
    id: 'CN=nouri,O=Acme',
    tenant: 'acme',
    user: 'nouri',
    method: 'mtls',
    issuer: 'corp-ca',
  });
};

const ENVOY_XFCC_BILLING =
  'Hash=bdb661d708d098d161bd078622d562c9f17975d45e02ebdce2e4e18f6988bfd1;Subject="CN=billing,O=Acme";URI=spiffe://example.org/ns/prod/sa/billing';
const ENVOY_XFCC_NO_URI = 'Hash=e5;Subject="CN=nouri,O=Acme";URI=';
const ENVOY_XFCC_TWO = 'Hash=4b;Subject="CN=two";URI=spiffe://example.org/ns/a/sa/x;URI=spiffe://example.org/ns/b/sa/y';
const xfcc = (v: string) => ({ 'x-forwarded-client-cert': v });

const rows: Row[] = [
  // ---- source: attributes ----
  {
    name: 'attributes: a SPIFFE certificate maps to its principal; the issuer is the trust domain',
    mtls: viaAttributes,
    attributes: BILLING,
    expect: billing,
  },
  {
    name: 'attributes: a certificate with two URI SANs is ambiguous (the attribute shows only the first): 401',
    mtls: viaAttributes,
    attributes: TWO,
    expect: notMapped,
  },
  {
    name: 'attributes: a certificate without a URI SAN maps by its subject when a subject rule matches',
    mtls: viaAttributes,
    attributes: NO_URI,
    expect: bySubject,
  },
  {
    name: 'attributes: a certificate without a URI SAN is 401 when no subject rule is configured',
    mtls: { source: 'attributes', spiffe },
    attributes: NO_URI,
    expect: notMapped,
  },
  {
    name: 'attributes: a subject no rule matches is 401',
    mtls: { source: 'attributes', subjects: [{ ...subjects[0], match: { O: 'Globex', CN: '{cn}' } }] },
    attributes: NO_URI,
    expect: notMapped,
  },
  {
    name: 'attributes: a trust domain no rule names is 401',
    mtls: { source: 'attributes', spiffe: [{ ...spiffe[0], trustDomain: 'other.org' }] },
    attributes: BILLING,
    expect: notMapped,
  },
  {
    name: 'attributes: a SPIFFE ID no rule path matches is 401',
    mtls: { source: 'attributes', spiffe: [{ ...spiffe[0], path: '/ns/{ns}/sa/{sa}/v2' }] },
    attributes: BILLING,
    expect: notMapped,
  },
  {
    name: 'attributes: a literal segment must be equal',
    mtls: {
      source: 'attributes',
      spiffe: [{ ...spiffe[0], path: '/ns/staging/sa/{sa}', tenant: 'staging', roles: [] }],
    },
    attributes: BILLING,
    expect: notMapped,
  },
  {
    name: 'attributes: the first matching rule decides',
    mtls: {
      source: 'attributes',
      spiffe: [{ ...spiffe[0], path: '/ns/prod/sa/{sa}', tenant: 'production', roles: [] }, ...spiffe],
    },
    attributes: BILLING,
    expect: (run) => expect(run.ctx.principal).toMatchObject({ tenant: 'production', roles: [] }),
  },
  {
    name: 'attributes: connection.mtls without connection.peer_certificate fails closed (500), naming the fix in the audit',
    mtls: viaAttributes,
    attributes: {
      'connection.mtls': true,
      'connection.uri_san_peer_certificate': 'spiffe://example.org/ns/prod/sa/billing',
    },
    expect: (run) => {
      refused('internal_error', 500)(run);
      expect(run.audit.failure).toContain('connection.peer_certificate');
    },
  },
  {
    name: 'attributes: a connection without a client certificate identifies nobody: 401 missing credential',
    mtls: viaAttributes,
    attributes: { 'connection.mtls': false },
    expect: refused('missing_api_key'),
  },
  {
    name: 'attributes: a spoofed x-forwarded-client-cert is never read',
    mtls: viaAttributes,
    headers: xfcc(ENVOY_XFCC_BILLING),
    expect: refused('missing_api_key'),
  },
  {
    name: 'attributes: x-forwarded-client-cert is removed before the request goes upstream',
    mtls: viaAttributes,
    headers: { ...xfcc(ENVOY_XFCC_BILLING), authorization: `Bearer ${key}` },
    expect: (run) => {
      expect(run.ctx.principal?.id).toBe('ops');
      expect(run.upstream?.removed).toContain('x-forwarded-client-cert');
      expect(run.ctx.headers.has('x-forwarded-client-cert')).toBe(false);
    },
  },
  {
    name: 'a bearer credential on an mTLS connection is judged as without one: the API key decides',
    mtls: viaAttributes,
    attributes: BILLING,
    headers: { authorization: `Bearer ${key}` },
    expect: (run) => expect(run.ctx.principal).toMatchObject({ id: 'ops', method: 'api_key' }),
  },
  {
    name: 'a bad bearer credential on an mTLS connection is 401, never rescued by the certificate',
    mtls: viaAttributes,
    attributes: BILLING,
    headers: { authorization: `Bearer ${generateApiKey('ops')}` },
    expect: refused('invalid_api_key'),
  },
  // ---- source: xfcc ----
  {
    name: 'xfcc: the header Envoy sets maps to the same principal as the attributes',
    mtls: viaXfcc,
    headers: xfcc(ENVOY_XFCC_BILLING),
    expect: billing,
  },
  {
    name: 'xfcc: the header stays for upstream (Envoy set it for the next hop)',
    mtls: viaXfcc,
    headers: xfcc(ENVOY_XFCC_BILLING),
    expect: (run) => expect(run.upstream?.removed).not.toContain('x-forwarded-client-cert'),
  },
  {
    name: 'xfcc: two URI= (two URI SANs) are ambiguous: 401',
    mtls: viaXfcc,
    headers: xfcc(ENVOY_XFCC_TWO),
    expect: notMapped,
  },
  {
    name: 'xfcc: an empty URI= (no URI SAN) maps by the subject when a subject rule matches',
    mtls: viaXfcc,
    headers: xfcc(ENVOY_XFCC_NO_URI),
    expect: bySubject,
  },
  {
    name: 'xfcc: an empty URI= is 401 without a subject rule',
    mtls: { ...viaXfcc, subjects: [] },
    headers: xfcc(ENVOY_XFCC_NO_URI),
    expect: notMapped,
  },
  {
    name: 'xfcc: an empty URI= beside a real one is 401',
    mtls: viaXfcc,
    headers: xfcc('URI=;URI=spiffe://example.org/ns/prod/sa/billing'),
    expect: notMapped,
  },
  {
    name: 'xfcc: two elements (a header appended to, not set) are ambiguous: 401',
    mtls: viaXfcc,
    headers: xfcc(`${ENVOY_XFCC_BILLING},URI=spiffe://example.org/ns/prod/sa/admin`),
    expect: notMapped,
  },
  {
    name: 'xfcc: two x-forwarded-client-cert headers are two elements: 401',
    mtls: viaXfcc,
    // The state machine joins repeated headers with ",", as XFCC separates elements.
    headers: xfcc(`URI=spiffe://example.org/ns/prod/sa/billing,URI=spiffe://example.org/ns/prod/sa/admin`),
    expect: notMapped,
  },
  {
    name: 'xfcc: a malformed header is 401',
    mtls: viaXfcc,
    headers: xfcc('URI=spiffe://example.org/ns/prod/sa/billing;Subject="CN=a'),
    expect: notMapped,
  },
  {
    name: 'xfcc: an element without a URI field is 401 (Envoy must set uri: true)',
    mtls: viaXfcc,
    headers: xfcc('Hash=ab;Subject="CN=nouri,O=Acme"'),
    expect: notMapped,
  },
  {
    name: 'xfcc: a URI SAN that is not a SPIFFE ID is 401',
    mtls: viaXfcc,
    headers: xfcc('URI=https://example.org/ns/prod/sa/billing'),
    expect: notMapped,
  },
  {
    name: 'xfcc: a SPIFFE ID with a dot-dot segment is 401',
    mtls: viaXfcc,
    headers: xfcc('URI=spiffe://example.org/ns/prod/sa/..'),
    expect: notMapped,
  },
  {
    name: 'xfcc: a subject with the matched attribute twice is ambiguous: 401',
    mtls: viaXfcc,
    headers: xfcc('Subject="CN=a,CN=b,O=Acme";URI='),
    expect: notMapped,
  },
  {
    name: 'xfcc: a captured subject value that is not printable ASCII is 401',
    mtls: viaXfcc,
    headers: xfcc('Subject="CN=Jos\\C3\\A9,O=Acme";URI='),
    expect: notMapped,
  },
  {
    name: 'xfcc: no header identifies nobody: 401 missing credential (attributes are not read)',
    mtls: viaXfcc,
    attributes: BILLING,
    expect: refused('missing_api_key'),
  },
  // ---- identity.mtls unset ----
  {
    name: 'no identity.mtls: a certificate identifies nobody',
    mtls: {},
    attributes: BILLING,
    expect: refused('missing_api_key'),
  },
  {
    name: 'no identity.mtls: a spoofed x-forwarded-client-cert is removed and never read',
    mtls: {},
    headers: { ...xfcc(ENVOY_XFCC_BILLING), authorization: `Bearer ${key}` },
    expect: (run) => {
      expect(run.ctx.principal?.id).toBe('ops');
      expect(run.upstream?.removed).toContain('x-forwarded-client-cert');
    },
  },
];

describe('identity.authenticate with client certificates', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const mtls = Object.keys(row.mtls).length > 0 ? { mtls: row.mtls } : {};
      row.expect(
        await runStage({
          stages: ['identity.authenticate'],
          config: { identity: { apiKeys, ...mtls } },
          request: {
            path: '/v1/models',
            ...(row.headers ? { headers: row.headers } : {}),
            ...(row.attributes ? { attributes: row.attributes } : {}),
          },
        }),
      );
    });
  }
});
