// A fake IdP for unit tests of the key cache and the JWT authenticator: a FetchJson that answers
// discovery and JWKS URLs from a table the test edits, counts every fetch, and can fail, hang or
// set Cache-Control. Integration and e2e tests use the real OpenID provider (oidc.ts) instead.
import type { FetchedJson, FetchJson } from '../../extproc/identity/jwt/fetch-json.ts';

export interface FakeResponse {
  json?: unknown;
  maxAgeSeconds?: number;
  /** Reject with this message. */
  error?: string;
  /** Never settle until release() (a slow IdP). */
  hang?: boolean;
}

export class FakeIdp {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly routes = new Map<string, FakeResponse>();
  readonly fetched: string[] = [];
  private held: (() => void)[] = [];

  constructor(issuer = 'https://idp.test', jwksUri = `${issuer}/keys`) {
    this.issuer = issuer;
    this.jwksUri = jwksUri;
    this.routes.set(`${issuer}/.well-known/openid-configuration`, { json: { issuer, jwks_uri: jwksUri } });
  }

  /** Publish a JWKS. */
  keys(doc: unknown, opts: Omit<FakeResponse, 'json'> = {}): this {
    this.routes.set(this.jwksUri, { json: doc, ...opts });
    return this;
  }

  fail(url: string = this.jwksUri, error = 'connect ECONNREFUSED'): this {
    this.routes.set(url, { error });
    return this;
  }

  /** Let every hanging fetch answer with what its route says now. */
  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  count(url: string = this.jwksUri): number {
    return this.fetched.filter((u) => u === url).length;
  }

  readonly fetchJson: FetchJson = (url) => {
    this.fetched.push(url);
    const answer = (): Promise<FetchedJson> => {
      const r = this.routes.get(url);
      if (r === undefined) return Promise.reject(new Error('HTTP 404'));
      if (r.error !== undefined) return Promise.reject(new Error(r.error));
      return Promise.resolve({ json: r.json, maxAgeSeconds: r.maxAgeSeconds });
    };
    if (this.routes.get(url)?.hang)
      return new Promise((resolve, reject) => this.held.push(() => answer().then(resolve, reject)));
    return answer();
  };
}
