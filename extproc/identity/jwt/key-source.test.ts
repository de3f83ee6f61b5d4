// The process-wide key cache over a fake IdP and a fake clock: when it fetches, when it refuses
// to, and what it keeps when the IdP fails.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeIdp } from '../../../test/harness/fake-idp.ts';
import { jwks, makeSigningKey } from '../../../test/harness/jwt-keys.ts';
import { configSchema } from '../../config/schema.ts';
import { systemClock } from '../../pipeline/stage.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { createJwtAuthenticator } from './authenticator.ts';
import { type JwksConfig, jwksConfig } from './config.ts';
import { KeyRegistry } from './key-registry.ts';
import type { KeySource, KeySourceSpec } from './key-source.ts';

const k1 = makeSigningKey('ES256', 'k1');
const k2 = makeSigningKey('ES256', 'k2');
const settings: JwksConfig = jwksConfig.parse({});

let idp: FakeIdp;
let metrics: Metrics;
let registry: KeyRegistry;
const spec = (over: Partial<KeySourceSpec> = {}): KeySourceSpec => ({
  issuer: idp.issuer,
  jwksUri: undefined,
  allowHttpLoopback: false,
  ...over,
});
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

async function fetches(reason: string, result = 'ok'): Promise<number> {
  const values = (await metrics.jwksFetches.get()).values;
  return values.find((v) => v.labels.reason === reason && v.labels.result === result)?.value ?? 0;
}

async function started(s: Partial<JwksConfig> = {}, sp: Partial<KeySourceSpec> = {}): Promise<KeySource> {
  const [source] = registry.configure([spec(sp)], { ...settings, ...s });
  await tick();
  return source!;
}

beforeEach(() => {
  vi.useFakeTimers();
  idp = new FakeIdp().keys(jwks(k1));
  metrics = new Metrics({ defaultMetrics: false });
  registry = new KeyRegistry({
    metrics,
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    fetchJson: idp.fetchJson,
  });
});
afterEach(() => {
  registry.close();
  vi.useRealTimers();
});

describe('the JWKS cache', () => {
  it('fetches at configuration, by discovery, in the background; a request then only looks up', async () => {
    const source = await started();
    expect(idp.fetched).toEqual([`${idp.issuer}/.well-known/openid-configuration`, idp.jwksUri]);
    expect(source.find('k1', 'ES256')?.kid).toBe('k1');
    expect(await fetches('startup')).toBe(1);
    expect((await metrics.jwksKeys.get()).values[0]).toMatchObject({ labels: { issuer: idp.issuer }, value: 1 });
    for (let i = 0; i < 100; i++) source.find('k1', 'ES256');
    expect(idp.fetched).toHaveLength(2);
  });

  it('an explicit jwksUri skips discovery', async () => {
    await started({}, { jwksUri: idp.jwksUri });
    expect(idp.fetched).toEqual([idp.jwksUri]);
  });

  it('refreshes every refreshMs without Cache-Control, rediscovering', async () => {
    await started();
    await tick(settings.refreshMs - 1);
    expect(await fetches('refresh')).toBe(0);
    await tick(1);
    expect(await fetches('refresh')).toBe(1);
    expect(idp.count(`${idp.issuer}/.well-known/openid-configuration`)).toBe(2);
  });

  const maxAges: [string, number, number][] = [
    ['a max-age within bounds is honoured', 600, 600_000],
    ['a max-age under minRefreshMs is raised to it', 1, settings.minRefreshMs],
    ['a max-age over maxRefreshMs is lowered to it', 86_400, settings.maxRefreshMs],
  ];
  for (const [name, maxAgeSeconds, wantMs] of maxAges)
    it(name, async () => {
      idp.keys(jwks(k1), { maxAgeSeconds });
      await started();
      await tick(wantMs - 1);
      expect(await fetches('refresh')).toBe(0);
      await tick(1);
      expect(await fetches('refresh')).toBe(1);
    });

  it('an unknown kid refetches once, and the request sees the rotated key', async () => {
    const source = await started();
    idp.keys(jwks(k1, k2));
    expect(source.find('k2', 'ES256')).toBeUndefined();
    const wait = source.awaitFetch(undefined);
    expect(wait).toBeDefined();
    await tick();
    await wait;
    expect(source.find('k2', 'ES256')?.kid).toBe('k2');
    expect(await fetches('unknown_kid')).toBe(1);
    // the on-demand fetch does not rediscover: one JWKS request, the shortest path to the key
    expect(idp.count(`${idp.issuer}/.well-known/openid-configuration`)).toBe(1);
  });

  it('a storm of unknown kids: one fetch per cooldown, the rest refused at once', async () => {
    const source = await started();
    const first = source.awaitFetch(undefined);
    const joined = Array.from({ length: 50 }, () => source.awaitFetch(undefined));
    expect(joined.every((w) => w !== undefined)).toBe(true); // joined the fetch under way
    await tick();
    await Promise.all([first, ...joined]);
    for (let i = 0; i < 1000; i++) expect(source.awaitFetch(undefined)).toBeUndefined();
    expect(await fetches('unknown_kid')).toBe(1);
    await tick(settings.unknownKidCooldownMs);
    expect(source.awaitFetch(undefined)).toBeDefined();
    await tick();
    expect(await fetches('unknown_kid')).toBe(2);
  });

  it('a request waits for a slow fetch at most keyWaitMs; the fetch goes on and its keys serve later requests', async () => {
    const source = await started();
    idp.keys(jwks(k1, k2), { hang: true });
    let done = false;
    void source.awaitFetch(undefined)!.then(() => {
      done = true;
    });
    await tick(settings.keyWaitMs - 1);
    expect(done).toBe(false);
    await tick(1);
    expect(done).toBe(true);
    expect(source.fetching).toBe(true);
    idp.release();
    await tick();
    expect(source.fetching).toBe(false);
    expect(source.find('k2', 'ES256')?.kid).toBe('k2');
  });

  it("a request stops waiting when its signal aborts (the message deadline, Envoy's cancel)", async () => {
    const source = await started();
    idp.keys(jwks(k1), { hang: true });
    const ac = new AbortController();
    let done = false;
    void source.awaitFetch(ac.signal)!.then(() => {
      done = true;
    });
    await tick(10);
    expect(done).toBe(false);
    ac.abort();
    await tick();
    expect(done).toBe(true);
    idp.release();
  });

  it('the IdP going down: cached keys keep working, the failure is remembered with backoff', async () => {
    const source = await started();
    idp.fail();
    await tick(settings.refreshMs);
    expect(await fetches('refresh', 'error')).toBe(1);
    expect(source.find('k1', 'ES256')?.kid).toBe('k1');
    // within the backoff nothing fetches, whatever requests need
    for (let i = 0; i < 100; i++) expect(source.awaitFetch(undefined)).toBeUndefined();
    expect(idp.count()).toBe(2);
    // retries at 1 s, then 2 s, 4 s …
    await tick(1000);
    expect(idp.count()).toBe(3);
    await tick(1999);
    expect(idp.count()).toBe(3);
    await tick(1);
    expect(idp.count()).toBe(4);
    // back up: keys again, the normal interval resumes
    idp.keys(jwks(k1, k2));
    await tick(4000);
    expect(source.find('k2', 'ES256')?.kid).toBe('k2');
    const n = idp.count();
    await tick(settings.refreshMs - 1);
    expect(idp.count()).toBe(n);
  });

  it('the backoff is capped at failureBackoffMaxMs', async () => {
    idp.fail();
    await started({ failureBackoffMaxMs: 4000 });
    await tick(1000 + 2000 + 4000);
    const n = idp.count();
    await tick(4000);
    expect(idp.count()).toBe(n + 1);
  });

  it('down at start: no keys, and requests refused at once during the backoff', async () => {
    idp.fail();
    const source = await started({}, { jwksUri: idp.jwksUri });
    expect(source.keyCount).toBe(0);
    expect(source.awaitFetch(undefined)).toBeUndefined();
    expect(await fetches('startup', 'error')).toBe(1);
    // after the backoff, a request may try once more (joining the scheduled retry)
    idp.keys(jwks(k1));
    await tick(1000);
    expect(source.find('k1', 'ES256')?.kid).toBe('k1');
  });

  const badDiscovery: [string, unknown][] = [
    ['names another issuer', { issuer: 'https://evil.test', jwks_uri: 'https://idp.test/keys' }],
    ['points at plain http', { issuer: 'https://idp.test', jwks_uri: 'http://idp.test/keys' }],
    ['has no jwks_uri', { issuer: 'https://idp.test' }],
    ['is not an object', 'hello'],
  ];
  for (const [name, doc] of badDiscovery)
    it(`a discovery document that ${name} is refused: no keys`, async () => {
      idp.routes.set(`${idp.issuer}/.well-known/openid-configuration`, { json: doc });
      const source = await started();
      expect(source.keyCount).toBe(0);
      expect(idp.count()).toBe(0);
      expect(await fetches('startup', 'error')).toBe(1);
    });

  it('allowHttpLoopback lets a test IdP on 127.0.0.1 publish over http', async () => {
    idp = new FakeIdp('http://127.0.0.1:9999', 'http://127.0.0.1:9999/jwks').keys(jwks(k1));
    registry = new KeyRegistry({
      metrics,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      fetchJson: idp.fetchJson,
    });
    const source = await started({}, { allowHttpLoopback: true });
    expect(source.keyCount).toBe(1);
  });

  it('a JWKS with no usable key keeps the previous keys', async () => {
    const source = await started();
    idp.keys({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] });
    await tick(settings.refreshMs);
    expect(await fetches('refresh', 'error')).toBe(1);
    expect(source.find('k1', 'ES256')?.kid).toBe('k1');
  });

  it('a reload keeps the cache: same issuer, same keys, no fetch; a removed issuer stops refreshing', async () => {
    const source = await started();
    const [again] = registry.configure([spec()], settings);
    expect(again).toBe(source);
    await tick();
    expect(idp.fetched).toHaveLength(2);
    registry.configure([], settings);
    await tick(settings.maxRefreshMs * 2);
    expect(idp.fetched).toHaveLength(2);
    expect(source.find('k1', 'ES256')?.kid).toBe('k1'); // a snapshot still in flight keeps working
  });

  it('a reload that removes every issuer stops refreshing their keys', async () => {
    const logger = pino({ level: 'silent' });
    const withIssuer = configSchema.parse({
      identity: { jwt: { issuers: [{ issuer: idp.issuer, audiences: ['gate'], tenant: 'acme' }] } },
    });
    expect(createJwtAuthenticator(withIssuer, registry, logger, Date.now)).toBeDefined();
    await tick();
    expect(idp.count()).toBe(1);
    expect(createJwtAuthenticator(configSchema.parse({}), registry, logger, Date.now)).toBeUndefined();
    await tick(settings.maxRefreshMs * 2);
    expect(idp.count()).toBe(1);
  });
});
