// The peer authenticator keeps what it mapped per certificate (or XFCC header): a client on a
// kept-alive connection presents the same certificate on every request.
import { describe, expect, it } from 'vitest';
import { SPIFFE_BILLING } from '../../test/fixtures/client-certificates.ts';
import { configSchema } from '../config/schema.ts';
import { RequestContext } from '../pipeline/context.ts';
import { createPeerAuthenticator } from './peer-authenticator.ts';

const spiffe = [{ trustDomain: 'example.org', path: '/ns/{ns}/sa/{sa}', tenant: '{ns}' }];
const config = (mtls: Record<string, unknown>) =>
  configSchema.parse({ audit: { path: '-' }, identity: { mtls: { spiffe, ...mtls } } });

describe('createPeerAuthenticator', () => {
  it('is absent without identity.mtls', () =>
    expect(createPeerAuthenticator(configSchema.parse({ audit: { path: '-' } }))).toBeUndefined());

  it('attributes: the second request with a certificate gets the principal mapped for the first', () => {
    const cfg = config({});
    const auth = createPeerAuthenticator(cfg)!;
    const ctx = () => {
      const c = new RequestContext(cfg);
      c.peer = { mtls: true, uriSan: undefined, subject: 'CN=billing,O=Acme', certificate: SPIFFE_BILLING };
      return c;
    };
    const first = auth.authenticate(ctx());
    expect(first).toMatchObject({ id: 'spiffe://example.org/ns/prod/sa/billing', tenant: 'prod' });
    expect(auth.authenticate(ctx())).toBe(first);
  });

  it('xfcc: the same header maps once; a refused one is refused every time', () => {
    const cfg = config({ source: 'xfcc', envoyForwardClientCertDetails: 'SANITIZE_SET' });
    const auth = createPeerAuthenticator(cfg)!;
    const ctx = (header: string) => {
      const c = new RequestContext(cfg);
      c.headers.set('x-forwarded-client-cert', header);
      return c;
    };
    const first = auth.authenticate(ctx('URI=spiffe://example.org/ns/prod/sa/billing'));
    expect(auth.authenticate(ctx('URI=spiffe://example.org/ns/prod/sa/billing'))).toBe(first);
    for (let i = 0; i < 2; i++)
      expect(() => auth.authenticate(ctx('URI=spiffe://other.org/ns/prod/sa/billing'))).toThrow(
        expect.objectContaining({ code: 'invalid_client_certificate' }),
      );
  });

  it('keeps a bounded number of identities: thousands of certificates do not grow it past its cap', () => {
    const cfg = config({ source: 'xfcc', envoyForwardClientCertDetails: 'SANITIZE_SET' });
    const auth = createPeerAuthenticator(cfg)!;
    const ctx = (i: number) => {
      const c = new RequestContext(cfg);
      c.headers.set('x-forwarded-client-cert', `Hash=${i};URI=spiffe://example.org/ns/n${i}/sa/s`);
      return c;
    };
    const early = auth.authenticate(ctx(0));
    for (let i = 1; i <= 5000; i++) auth.authenticate(ctx(i));
    // The first one was evicted: mapping it again gives an equal principal, but a new object.
    const again = auth.authenticate(ctx(0));
    expect(again).toEqual(early);
    expect(again).not.toBe(early);
    expect(auth.authenticate(ctx(5000))).toBe(auth.authenticate(ctx(5000)));
  });
});
