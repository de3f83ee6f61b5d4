// The JWT authenticator of one config snapshot. Order, cheapest first and nothing trusted before
// it is checked: the strict syntax check and size cap; the issuer, chosen by the token's iss
// among the configured ones (so one issuer's keys are never tried on another's token); its
// algorithm allow-list and typ; the key from the process-wide cache, by kid and algorithm (a
// fetch only for a key the cache lacks, bounded); the signature, verified by jose; then the
// claims (exp required, nbf, iat not in the future, aud), and the claim mapping. Every failure is
// a 401 invalid_token naming its class; the token is never logged or echoed.
import type { Config } from '../../config/schema.ts';
import type { Principal, RequestContext } from '../../pipeline/context.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { JwtAuthenticator } from '../authenticator.ts';
import { ClaimMapper } from './claims.ts';
import type { JwtIssuerConfig } from './config.ts';
import type { KeyRegistry } from './key-registry.ts';
import type { VerificationKey } from './key-set.ts';
import type { KeySource } from './key-source.ts';
import { JwtRejection, reject } from './rejection.ts';
import { type ParsedJws, parseCompactJws } from './syntax.ts';
import { checkTimeAndAudience } from './time-claims.ts';
import { VerifiedTokens } from './verified-tokens.ts';

interface CompiledIssuer {
  readonly issuer: string;
  readonly audiences: ReadonlySet<string>;
  readonly algorithms: ReadonlySet<string>;
  /** jose's own allow-list, for the one algorithm the token names (checked above already). */
  readonly verifyOptions: ReadonlyMap<string, { algorithms: string[] }>;
  readonly types: ReadonlySet<string>;
  readonly requireType: boolean;
  readonly keys: KeySource;
  readonly mapper: ClaimMapper;
}

/** Compiled once per config snapshot; undefined when no issuer is configured. */
export function createJwtAuthenticator(
  config: Config,
  registry: KeyRegistry,
  logger: Logger,
  now: () => number,
): JwtAuthenticator | undefined {
  const jwt = config.identity.jwt;
  // Called with no issuers too, so the keys of issuers a reload removed stop being refreshed.
  const sources = registry.configure(
    jwt.issuers.map((i) => ({ issuer: i.issuer, jwksUri: i.jwksUri, allowHttpLoopback: i.allowHttpLoopback })),
    jwt.jwks,
  );
  if (jwt.issuers.length === 0) return undefined;
  const issuers = new Map<string, CompiledIssuer>();
  for (const [n, i] of jwt.issuers.entries()) issuers.set(i.issuer, compile(i, sources[n]!));
  return new Authenticator(issuers, jwt, logger, now);
}

function compile(i: JwtIssuerConfig, keys: KeySource): CompiledIssuer {
  return {
    issuer: i.issuer,
    audiences: new Set(i.audiences),
    algorithms: new Set(i.algorithms),
    verifyOptions: new Map(i.algorithms.map((a) => [a, { algorithms: [a] }])),
    types: new Set(i.types.map(normalizeType)),
    requireType: i.requireType,
    keys,
    mapper: new ClaimMapper(i),
  };
}

/** RFC 7515 §4.1.9: media types compare case-insensitively, "application/" may be left out. */
function normalizeType(typ: string): string {
  const t = typ.toLowerCase();
  return t.startsWith('application/') ? t.slice('application/'.length) : t;
}

type Jose = typeof import('jose');
/** jose, imported when the first config with JWT issuers makes an authenticator, not by every
 * gate (~0.6 MiB of heap, README "Levers tried"). Only signature checks use it, and they are
 * asynchronous anyway; the import has long settled by the first one. */
let jose: Promise<Jose> | undefined;

class Authenticator implements JwtAuthenticator {
  private readonly issuers: ReadonlyMap<string, CompiledIssuer>;
  private readonly maxTokenBytes: number;
  private readonly toleranceSeconds: number;
  private readonly verified: VerifiedTokens;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly jose: Promise<Jose>;

  constructor(
    issuers: ReadonlyMap<string, CompiledIssuer>,
    jwt: Config['identity']['jwt'],
    logger: Logger,
    now: () => number,
  ) {
    this.issuers = issuers;
    this.maxTokenBytes = jwt.maxTokenBytes;
    this.toleranceSeconds = jwt.clockToleranceSeconds;
    this.verified = new VerifiedTokens(jwt.cachedTokens);
    this.logger = logger;
    this.now = now;
    if (jose === undefined) {
      jose = import('jose');
      // A failed import refuses each signature check that awaits it; not a crash meanwhile.
      jose.catch(() => {});
    }
    this.jose = jose;
  }

  /** Synchronous for a token verified before (the steady state); a promise while a signature
   * is checked. A token refused before that is refused synchronously (thrown), so junk costs
   * no promise. */
  authenticate(token: string, ctx: RequestContext): Principal | Promise<Principal> {
    const known = this.verified.get(token, this.now() / 1000);
    if (known !== undefined) return known;
    let jws: ParsedJws;
    let iss: CompiledIssuer;
    let key: VerificationKey | undefined;
    try {
      jws = parseCompactJws(token, this.maxTokenBytes);
      const found = this.issuers.get(jws.iss);
      if (found === undefined) throw reject('unknown_issuer');
      iss = found;
      if (!iss.algorithms.has(jws.alg)) throw reject('algorithm');
      if (jws.typ === undefined ? iss.requireType : !iss.types.has(normalizeType(jws.typ))) throw reject('type');
      key = iss.keys.find(jws.kid, jws.alg);
    } catch (err) {
      throw this.logged(err, ctx, undefined);
    }
    if (key !== undefined) return this.verify(token, jws, iss, key, ctx);
    return this.verifyAfterFetch(token, jws, iss, ctx);
  }

  /** The cache lacks the token's key: wait (briefly) for a refetch, then look again. */
  private async verifyAfterFetch(
    token: string,
    jws: ParsedJws,
    iss: CompiledIssuer,
    ctx: RequestContext,
  ): Promise<Principal> {
    const wait = iss.keys.awaitFetch(ctx.signal);
    if (wait !== undefined) await wait;
    const key = iss.keys.find(jws.kid, jws.alg);
    if (key === undefined) {
      const reason = iss.keys.keyCount === 0 || iss.keys.fetching ? 'keys_unavailable' : 'unknown_key';
      throw this.logged(reject(reason), ctx, iss.issuer);
    }
    return this.verify(token, jws, iss, key, ctx);
  }

  private async verify(
    token: string,
    jws: ParsedJws,
    iss: CompiledIssuer,
    key: VerificationKey,
    ctx: RequestContext,
  ): Promise<Principal> {
    try {
      const { compactVerify } = await this.jose;
      try {
        await compactVerify(token, key.key, iss.verifyOptions.get(jws.alg));
      } catch {
        throw reject('signature');
      }
      const problem = checkTimeAndAudience(jws.payload, iss.audiences, this.now() / 1000, this.toleranceSeconds);
      if (problem !== undefined) throw reject(problem);
      const principal = iss.mapper.map(jws.payload, iss.issuer);
      if ('problem' in principal) throw reject('principal', principal.problem);
      this.verified.add(token, {
        principal,
        validUntilSeconds: (jws.payload.exp as number) + this.toleranceSeconds,
        keys: iss.keys,
        kid: jws.kid,
        alg: jws.alg,
        key,
      });
      return principal;
    } catch (err) {
      throw this.logged(err, ctx, iss.issuer);
    }
  }

  /** Refusals are logged at debug with their reason and issuer, never the token. */
  private logged(err: unknown, ctx: RequestContext, issuer: string | undefined): unknown {
    if (err instanceof JwtRejection && this.logger.isLevelEnabled('debug'))
      this.logger.debug({ requestId: ctx.requestId, reason: err.reason, issuer }, 'JWT refused');
    return err;
  }
}
