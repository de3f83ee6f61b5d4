// One issuer's signing keys, kept fresh off the request path. Keys are fetched when the issuer
// is first configured and then refreshed in the background (Cache-Control max-age honoured
// within bounds); a request only looks them up. When a token names a key the cache lacks (the
// IdP rotated), the request may trigger one refetch per cooldown and waits for it only briefly;
// a failed fetch is remembered (exponential backoff), so neither a storm of made-up key ids nor
// an IdP that is down makes the gate hammer it. Cached keys keep working while it is down.

import type { Clock } from '../../pipeline/stage.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { JwksConfig } from './config.ts';
import type { FetchJson } from './fetch-json.ts';
import { importJwks, KeySet, type VerificationKey } from './key-set.ts';
import { keyUrlProblem } from './key-url.ts';

export interface KeySourceSpec {
  readonly issuer: string;
  /** Absent: found by OIDC discovery from the issuer. */
  readonly jwksUri: string | undefined;
  readonly allowHttpLoopback: boolean;
}

/** startup: the issuer was configured; refresh: the background interval; unknown_kid: a request
 * needed a key the cache lacks (the only fetch a request can cause). */
export type FetchReason = 'startup' | 'refresh' | 'unknown_kid';

export interface KeySourceDeps {
  readonly fetchJson: FetchJson;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onFetch: (issuer: string, reason: FetchReason, result: 'ok' | 'error') => void;
  readonly onKeys: (issuer: string, count: number) => void;
}

/** The first retry after a failure; doubled per consecutive failure up to failureBackoffMaxMs. */
export const FIRST_BACKOFF_MS = 1000;

export class KeySource {
  readonly spec: KeySourceSpec;
  settings: JwksConfig;
  private readonly deps: KeySourceDeps;
  private keys: KeySet | undefined;
  private discoveredJwksUri: string | undefined;
  private inflight: Promise<void> | undefined;
  private failures = 0;
  /** No fetch starts before this (the backoff after a failure). */
  private retryAt = 0;
  private lastUnknownKidFetchAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(spec: KeySourceSpec, settings: JwksConfig, deps: KeySourceDeps) {
    this.spec = spec;
    this.settings = settings;
    this.deps = deps;
  }

  /** Keys are kept fresh in the background from now on; the first fetch starts at once. */
  start(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    if (this.keys === undefined && this.inflight === undefined) void this.load('startup');
    else if (this.inflight === undefined) this.schedule(this.settings.refreshMs);
  }

  /** No more background refreshes (the issuer left the config); cached keys stay. */
  stop(): void {
    this.refreshing = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  get keyCount(): number {
    return this.keys?.size ?? 0;
  }

  /** The cached key for a token, synchronously; undefined when the cache lacks it. */
  find(kid: string | undefined, alg: string): VerificationKey | undefined {
    return this.keys?.find(kid, alg);
  }

  /** For a token whose key the cache lacks: joins a fetch under way, or starts one unless one
   * ran within unknownKidCooldownMs or the last failed too recently, and waits for it at most
   * keyWaitMs (and never past `signal`). Resolves once the caller should look again; the fetch
   * goes on after a caller stops waiting. */
  awaitFetch(signal: AbortSignal | undefined): Promise<void> | undefined {
    let pending = this.inflight;
    if (pending === undefined) {
      const now = this.deps.clock.now();
      if (now < this.retryAt) return undefined;
      if (this.keys !== undefined && now < this.lastUnknownKidFetchAt + this.settings.unknownKidCooldownMs)
        return undefined;
      this.lastUnknownKidFetchAt = now;
      pending = this.load('unknown_kid');
    }
    return waitBounded(pending, this.settings.keyWaitMs, signal);
  }

  /** A fetch is under way (a request that stopped waiting for one says keys are unavailable). */
  get fetching(): boolean {
    return this.inflight !== undefined;
  }

  private load(reason: FetchReason): Promise<void> {
    if (this.inflight !== undefined) return this.inflight;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.fetchKeys(reason).finally(() => {
      this.inflight = undefined;
    });
    this.inflight = p;
    return p;
  }

  private async fetchKeys(reason: FetchReason): Promise<void> {
    const { issuer } = this.spec;
    try {
      let uri = this.spec.jwksUri ?? this.discoveredJwksUri;
      // The periodic refresh rediscovers, so an IdP that moves its JWKS is followed; a request
      // waiting for a key fetches only the JWKS, the shortest path to the new key.
      if (this.spec.jwksUri === undefined && (uri === undefined || reason === 'refresh')) uri = await this.discover();
      const res = await this.deps.fetchJson(uri!, this.fetchOptions());
      const imported = importJwks(res.json);
      if ('error' in imported) throw new Error(`JWKS ${imported.error}`);
      // An empty set would refuse every token: keep the keys we have and retry.
      if (imported.keys.length === 0) throw new Error(`JWKS has no usable key (${imported.skipped.join('; ')})`);
      if (imported.skipped.length > 0)
        this.deps.logger.warn({ issuer, skipped: imported.skipped }, 'JWKS keys skipped');
      this.keys = new KeySet(imported.keys);
      this.failures = 0;
      this.retryAt = 0;
      this.deps.onFetch(issuer, reason, 'ok');
      this.deps.onKeys(issuer, this.keys.size);
      this.deps.logger.debug({ issuer, reason, keys: this.keys.size }, 'JWKS fetched');
      const s = this.settings;
      const wanted = res.maxAgeSeconds === undefined ? s.refreshMs : res.maxAgeSeconds * 1000;
      this.schedule(Math.min(s.maxRefreshMs, Math.max(s.minRefreshMs, wanted)));
    } catch (err) {
      this.failures++;
      const backoff = Math.min(this.settings.failureBackoffMaxMs, FIRST_BACKOFF_MS * 2 ** (this.failures - 1));
      this.retryAt = this.deps.clock.now() + backoff;
      this.deps.onFetch(issuer, reason, 'error');
      this.deps.logger.warn(
        { issuer, reason, failures: this.failures, retryInMs: backoff, err: (err as Error).message },
        this.keys === undefined
          ? 'JWKS fetch failed; no keys for this issuer yet'
          : 'JWKS fetch failed; cached keys stay in use',
      );
      this.schedule(backoff);
    }
  }

  /** {issuer}/.well-known/openid-configuration: its issuer must be ours exactly (OIDC
   * Discovery §4.3), and its jwks_uri a URL we may fetch keys from. */
  private async discover(): Promise<string> {
    const url = `${this.spec.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const { json } = await this.deps.fetchJson(url, this.fetchOptions());
    if (typeof json !== 'object' || json === null) throw new Error('discovery document is not an object');
    const doc = json as { issuer?: unknown; jwks_uri?: unknown };
    if (doc.issuer !== this.spec.issuer) throw new Error('discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
    const problem = keyUrlProblem(doc.jwks_uri, this.spec.allowHttpLoopback);
    if (problem !== undefined) throw new Error(`discovered jwks_uri ${problem}`);
    this.discoveredJwksUri = doc.jwks_uri;
    return doc.jwks_uri;
  }

  private fetchOptions() {
    return { timeoutMs: this.settings.timeoutMs, maxBytes: this.settings.maxResponseBytes };
  }

  private schedule(ms: number): void {
    if (!this.refreshing) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.load(this.keys === undefined ? 'startup' : 'refresh');
    }, ms);
    this.timer.unref();
  }
}

/** Settles when `p` does, after `ms`, or when `signal` aborts, whichever is first; never
 * rejects (the fetch reports its own failures). */
function waitBounded(p: Promise<void>, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    p.then(done, done);
  });
}
