// The bench's token issuer: an ES256 key, its JWKS on a loopback HTTP server (what an IdP's
// jwks_uri serves), and access tokens signed with it. The governed_jwt gate is pointed at the
// JWKS; vegeta sends one token for the whole run, as a client reuses its access token until it
// expires, so the bench measures the steady state: no JWKS fetch on the request path.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const BENCH_AUDIENCE = 'lm-gate-bench';

export interface BenchIssuer {
  issuer: string;
  jwksUri: string;
  /** An access token for the bench caller, valid for two hours. */
  token(): Promise<string>;
  /** JWKS requests the server answered (the gate's startup fetch and background refreshes). */
  readonly jwksRequests: number;
  close(): Promise<void>;
}

export async function startBenchIssuer(): Promise<BenchIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };
  let jwksRequests = 0;
  const server = createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.statusCode = 404;
      res.end();
      return;
    }
    jwksRequests++;
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'max-age=300');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks.json`,
    token: () =>
      new SignJWT({ roles: ['bench'], team: 'bench-team' })
        .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(BENCH_AUDIENCE)
        .setSubject('bench-user')
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey),
    get jwksRequests() {
      return jwksRequests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
