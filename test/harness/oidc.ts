// A real OpenID provider (the certified `oidc-provider` package) on a free loopback port, for
// tests of the gate's JWT identity: OIDC discovery at /.well-known/openid-configuration, a JWKS,
// and access tokens in JWT format (RFC 9068) from the client_credentials grant with a resource
// indicator. Each resource indicator picks the signing algorithm (urn:lm-gate:RS256, …:ES256,
// …:EdDSA) and every token's audience is the gate's (AUDIENCE). Clients carry the claim shape of
// the IdP they stand for (Okta, Azure AD, Keycloak): extra claims, and a sub of their own.
//
// The provider runs in the test process; stop() takes it down (the IdP is down), restart() brings
// it back on the same port and issuer, optionally with new signing keys (a key rotation).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';
import { type MintOptions, makeSigningKey, mint, type TestAlg, type TestSigningKey } from './jwt-keys.ts';
import { freePort } from './ports.ts';

export const AUDIENCE = 'lm-gate';
export const TOKEN_ALGS = ['RS256', 'ES256', 'EdDSA'] as const satisfies readonly TestAlg[];
export type TokenAlg = (typeof TOKEN_ALGS)[number];

export interface TestClient {
  /** Claims the client's tokens carry besides the standard ones. */
  claims?: Record<string, unknown>;
  /** The token's sub (a user id); default: the client id, as client_credentials gives it. */
  sub?: string;
}

export interface OidcOptions {
  /** client id → its claim shape; each client's secret is `${id}-secret`. */
  clients: Record<string, TestClient>;
  /** Signing keys, one per algorithm; default: fresh RS256, ES256 and EdDSA keys. */
  keys?: TestSigningKey[];
}

export class TestOidc {
  readonly issuer: string;
  readonly port: number;
  keys: TestSigningKey[];
  private readonly opts: OidcOptions;
  private server: Server | undefined;
  private tokenEndpoint: string | undefined;

  private constructor(port: number, opts: OidcOptions, keys: TestSigningKey[]) {
    this.port = port;
    this.opts = opts;
    this.keys = keys;
    this.issuer = `http://127.0.0.1:${port}`;
  }

  static async start(opts: OidcOptions): Promise<TestOidc> {
    const keys = opts.keys ?? TOKEN_ALGS.map((alg) => makeSigningKey(alg));
    const oidc = new TestOidc(await freePort(), opts, keys);
    await oidc.listen();
    return oidc;
  }

  /** The key currently signing tokens of `alg`. */
  key(alg: TestAlg): TestSigningKey {
    const k = this.keys.find((x) => x.alg === alg);
    if (!k) throw new Error(`the test IdP has no ${alg} key`);
    return k;
  }

  /** An access token for `client`, from the token endpoint, signed with `alg`. */
  async token(client: string, alg: TokenAlg = 'RS256'): Promise<string> {
    if (this.tokenEndpoint === undefined) {
      const doc = (await (await fetch(`${this.issuer}/.well-known/openid-configuration`)).json()) as {
        token_endpoint: string;
      };
      this.tokenEndpoint = doc.token_endpoint;
    }
    const res = await fetch(this.tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `urn:lm-gate:${alg}`, scope: 'llm' }),
    });
    const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (!res.ok || !body.access_token)
      throw new Error(`token endpoint: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
    return body.access_token;
  }

  /** A token built by hand and signed with one of the provider's own keys: claims the provider
   * would never issue (expired, another audience, a crit header …) that only the checks after
   * the signature can refuse. */
  mint(alg: TestAlg, claims: Record<string, unknown>, opts?: MintOptions): string {
    return mint(this.key(alg), claims, opts);
  }

  /** The IdP goes down: discovery and the JWKS stop answering (connection refused). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Back up on the same port and issuer; with `keys`, signing with them from now on (a
   * rotation: the old keys are no longer published). */
  async restart(keys?: TestSigningKey[]): Promise<void> {
    await this.stop();
    if (keys) this.keys = keys;
    await this.listen();
  }

  private async listen(): Promise<void> {
    const provider = this.provider();
    const server = provider.listen(this.port, '127.0.0.1') as Server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', () => resolve());
      server.once('error', reject);
    });
    this.server = server;
    if ((server.address() as AddressInfo).port !== this.port) throw new Error('test IdP bound another port');
  }

  private provider(): Provider {
    const clients = this.opts.clients;
    const byAlg = new Map(this.keys.map((k) => [k.alg, k]));
    const provider = new Provider(this.issuer, {
      clients: Object.keys(clients).map((id) => ({
        client_id: id,
        client_secret: `${id}-secret`,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'llm',
      })),
      jwks: { keys: this.keys.map((k) => k.privateJwk) },
      adapter: MemoryAdapter,
      scopes: ['llm'],
      ttl: { ClientCredentials: 600 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:lm-gate:RS256',
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            const alg = resource.replace('urn:lm-gate:', '') as TestAlg;
            if (!byAlg.has(alg)) throw new Error(`no key for ${resource}`);
            return {
              scope: 'llm',
              audience: AUDIENCE,
              accessTokenFormat: 'jwt',
              accessTokenTTL: 600,
              jwt: { sign: { alg } },
            };
          },
        },
      },
      enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
      extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => {
        const client = clients[token.clientId ?? ''];
        return client?.claims;
      },
      formats: {
        customizers: {
          jwt: (_ctx: unknown, token: { clientId?: string }, jwt: { payload: Record<string, unknown> }) => {
            const sub = clients[token.clientId ?? '']?.sub;
            if (sub !== undefined) jwt.payload.sub = sub;
          },
        },
      },
    });
    // Provider errors are the tests' business (they assert on status); keep the output quiet.
    provider.on('server_error', () => {});
    return provider;
  }
}

/** oidc-provider's storage for what it keeps between requests (grants, sessions; JWT access
 * tokens themselves are not stored), in memory for the life of one provider. Its own default
 * does the same but warns on every start. */
class MemoryAdapter {
  private readonly items = new Map<string, Record<string, unknown>>();
  async upsert(id: string, payload: Record<string, unknown>): Promise<void> {
    this.items.set(id, payload);
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    return this.items.get(id);
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const item = this.items.get(id);
    if (item) item.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    this.items.delete(id);
  }
  async revokeByGrantId(): Promise<void> {}
}
