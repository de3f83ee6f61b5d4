// The verified-token cache: a token seen before is admitted synchronously, and only while it is
// still valid and its key still published.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeIdp } from '../../../test/harness/fake-idp.ts';
import { jwks, makeSigningKey, mint, validClaims } from '../../../test/harness/jwt-keys.ts';
import { configSchema } from '../../config/schema.ts';
import { RequestContext } from '../../pipeline/context.ts';
import type { GateError } from '../../pipeline/errors.ts';
import { systemClock } from '../../pipeline/stage.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { createJwtAuthenticator } from './authenticator.ts';
import { KeyRegistry } from './key-registry.ts';
import { VerifiedTokens } from './verified-tokens.ts';

const k1 = makeSigningKey('ES256', 'k1');
const k2 = makeSigningKey('ES256', 'k2');

async function setup(cachedTokens = 1024) {
  const idp = new FakeIdp().keys(jwks(k1));
  const logger = pino({ level: 'silent' });
  const registry = new KeyRegistry({
    metrics: new Metrics({ defaultMetrics: false }),
    logger,
    clock: systemClock,
    fetchJson: idp.fetchJson,
  });
  const config = configSchema.parse({
    identity: {
      jwt: {
        cachedTokens,
        issuers: [{ issuer: idp.issuer, audiences: ['gate'], algorithms: ['ES256'], tenant: 'acme' }],
      },
    },
  });
  const clock = { ms: Date.now() };
  const auth = createJwtAuthenticator(config, registry, logger, () => clock.ms)!;
  await new Promise((r) => setImmediate(r)); // the startup fetch
  const ctx = new RequestContext(config);
  return { idp, auth, clock, ctx, registry };
}

/** The refusal message of authenticating `token`, thrown at once or by the promise. */
const refusal = async (f: () => unknown) => {
  try {
    await f();
  } catch (err) {
    return (err as GateError).message;
  }
  return 'accepted';
};

describe('verified tokens', () => {
  it('a token presented again is admitted synchronously, as the same principal', async () => {
    const { idp, auth, ctx } = await setup();
    const token = mint(k1, validClaims(idp.issuer, 'gate'));
    const first = auth.authenticate(token, ctx);
    expect(first).toBeInstanceOf(Promise);
    const principal = await first;
    const again = auth.authenticate(token, ctx);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toBe(principal);
  });

  it('a token that differs by one character is not the cached one', async () => {
    const { idp, auth, ctx } = await setup();
    const token = mint(k1, validClaims(idp.issuer, 'gate'));
    await auth.authenticate(token, ctx);
    const [h, , s] = token.split('.');
    const other = `${h}.${Buffer.from(JSON.stringify(validClaims(idp.issuer, 'gate', { sub: 'admin' }))).toString('base64url')}.${s}`;
    expect(await refusal(() => auth.authenticate(other, ctx))).toMatch(/signature/);
  });

  it('a cached token is refused once it expires', async () => {
    const { idp, auth, clock, ctx } = await setup();
    const token = mint(k1, validClaims(idp.issuer, 'gate', { exp: Math.floor(clock.ms / 1000) + 60 }));
    await auth.authenticate(token, ctx);
    clock.ms += 60_000 + 29_000; // within the 30 s tolerance
    expect(auth.authenticate(token, ctx)).not.toBeInstanceOf(Promise);
    clock.ms += 1000;
    expect(await refusal(() => auth.authenticate(token, ctx))).toMatch(/expired/);
  });

  it("a cached token is refused once its key leaves the issuer's JWKS", async () => {
    const { idp, auth, ctx } = await setup();
    const token = mint(k1, validClaims(idp.issuer, 'gate'));
    await auth.authenticate(token, ctx);
    // k1 is withdrawn (compromised); a token with the new kid makes the gate refetch
    idp.keys(jwks(k2));
    await auth.authenticate(mint(k2, validClaims(idp.issuer, 'gate')), ctx);
    expect(await refusal(() => auth.authenticate(token, ctx))).toMatch(/key its issuer does not publish/);
  });

  it('failures are never cached: the same bad token is checked (and refused) every time', async () => {
    const { idp, auth, ctx } = await setup();
    const token = mint(k1, validClaims(idp.issuer, 'someone-else'));
    for (let i = 0; i < 3; i++) expect(await refusal(() => auth.authenticate(token, ctx))).toMatch(/aud/);
  });

  it('cachedTokens 0 verifies every request', async () => {
    const { idp, auth, ctx } = await setup(0);
    const token = mint(k1, validClaims(idp.issuer, 'gate'));
    await auth.authenticate(token, ctx);
    expect(auth.authenticate(token, ctx)).toBeInstanceOf(Promise);
  });

  it('is bounded: the oldest entry goes first', () => {
    const cache = new VerifiedTokens(2);
    const entry = { validUntilSeconds: Number.POSITIVE_INFINITY } as never;
    cache.add('a', entry);
    cache.add('b', entry);
    cache.add('c', entry);
    expect(cache.size).toBe(2);
  });
});
