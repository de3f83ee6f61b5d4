// The identity attack table, through real Envoy to a gate that accepts API keys and JWTs from a
// real OpenID provider: every row is a bad or ambiguous credential, and every one must get 401
// with an OpenAI-style authentication_error, exactly one audit record (status 401, no
// principal), nothing forwarded to the model server, and no echo of the credential.
//
// To add an attack, add a row to ROWS: a name that reads as a sentence, the headers it sends
// (built from the tools: the IdP, its keys, claims that would otherwise pass, the test keys), and
// the error code the client must get. Rows run in order, each with its own x-request-id.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../extproc/identity/api-keys.ts';
import { type Gate, makeKey, type TestKey } from '../harness/gate.ts';
import {
  makeSigningKey,
  mint,
  mintHs256WithPublicKey,
  mintUnsigned,
  nowSeconds,
  type TestSigningKey,
  validClaims,
} from '../harness/jwt-keys.ts';
import { AUDIENCE, TestOidc } from '../harness/oidc.ts';
import { type Stack, startStack } from '../harness/stack.ts';

interface Tools {
  idp: TestOidc;
  /** Claims a token of the trusted IdP passes with, changed by `over` (undefined removes one). */
  claims(over?: Record<string, unknown>): Record<string, unknown>;
  /** A key the IdP never published. */
  attacker: TestSigningKey;
  /** An attacker's web server on loopback, serving its JWKS: the gate must never ask it. */
  attackerUrl: string;
  alice: TestKey;
  disabled: TestKey;
  expired: TestKey;
  /** alice's old secret, whose rotation grace has ended. */
  rotatedAway: string;
}

interface Row {
  name: string;
  headers(t: Tools): Record<string, string> | Promise<Record<string, string>>;
  code: 'invalid_token' | 'missing_api_key' | 'invalid_api_key';
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const parts = (token: string) => token.split('.') as [string, string, string];

const ROWS: Row[] = [
  // ---- JWT: the signature and the algorithm ----
  { name: 'alg none, no signature', code: 'invalid_token', headers: (t) => bearer(mintUnsigned(t.claims())) },
  {
    name: 'alg none with a signature segment',
    code: 'invalid_token',
    headers: (t) => bearer(`${mintUnsigned(t.claims(), t.idp.key('RS256').kid)}c2ln`),
  },
  {
    name: 'HS256 signed with the RSA public key (algorithm confusion)',
    code: 'invalid_token',
    headers: (t) => bearer(mintHs256WithPublicKey(t.idp.key('RS256'), t.claims())),
  },
  {
    name: "ES256 naming the RSA key's kid (key-type confusion)",
    code: 'invalid_token',
    headers: (t) => bearer(mint(t.attacker, t.claims(), { header: { kid: t.idp.key('RS256').kid } })),
  },
  {
    name: "a signature by the attacker's key under the IdP's kid",
    code: 'invalid_token',
    headers: (t) => bearer(mint(t.attacker, t.claims(), { header: { kid: t.idp.key('ES256').kid } })),
  },
  {
    name: 'an unknown kid',
    code: 'invalid_token',
    headers: (t) => bearer(mint(t.attacker, t.claims())),
  },
  {
    name: 'PS256, which the issuer does not allow',
    code: 'invalid_token',
    headers: (t) => bearer(mint(makeSigningKey('PS256'), t.claims(), { header: { kid: t.idp.key('RS256').kid } })),
  },
  {
    name: 'a tampered payload (roles added after signing)',
    code: 'invalid_token',
    headers: (t) => {
      const [h, , s] = parts(t.idp.mint('ES256', t.claims()));
      return bearer(`${h}.${Buffer.from(JSON.stringify(t.claims({ roles: ['admin'] }))).toString('base64url')}.${s}`);
    },
  },
  {
    name: 'a token cut off in its signature',
    code: 'invalid_token',
    headers: (t) => {
      const token = t.idp.mint('RS256', t.claims());
      return bearer(token.slice(0, token.length - 40));
    },
  },
  {
    name: 'an empty signature',
    code: 'invalid_token',
    headers: (t) => bearer(`${parts(t.idp.mint('ES256', t.claims())).slice(0, 2).join('.')}.`),
  },
  {
    name: 'padding after the signature',
    code: 'missing_api_key',
    headers: (t) => bearer(`${t.idp.mint('ES256', t.claims())}==`),
  },
  {
    name: 'whitespace inside the signature',
    code: 'missing_api_key',
    headers: (t) => {
      const token = t.idp.mint('ES256', t.claims());
      return bearer(`${token.slice(0, -20)} ${token.slice(-20)}`);
    },
  },
  {
    name: 'a non-canonical last base64url character (same bytes, other string)',
    code: 'invalid_token',
    headers: (t) => {
      const token = t.idp.mint('ES256', t.claims()); // 64-byte signature: 86 characters, 4 unused bits
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      return bearer(`${token.slice(0, -1)}${alphabet[alphabet.indexOf(token.at(-1)!) | 1]}`);
    },
  },
  {
    name: 'a five-part JWE',
    code: 'missing_api_key',
    headers: (t) => bearer(`${t.idp.mint('ES256', t.claims())}.AAAA.BBBB`),
  },
  // ---- JWT: claims ----
  {
    name: 'expired',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ exp: nowSeconds() - 3600 }))),
  },
  {
    name: 'not yet valid (nbf in an hour)',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ nbf: nowSeconds() + 3600 }))),
  },
  {
    name: 'issued a day in the future (iat)',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ iat: nowSeconds() + 86_400 }))),
  },
  { name: 'no exp', code: 'invalid_token', headers: (t) => bearer(t.idp.mint('ES256', t.claims({ exp: undefined }))) },
  {
    name: 'another audience',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ aud: 'billing-api' }))),
  },
  {
    name: 'no audience',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ aud: undefined }))),
  },
  {
    name: 'an issuer the gate does not trust, signed by the trusted key',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ iss: 'https://evil.example' }))),
  },
  {
    name: 'the trusted issuer with a trailing slash',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ iss: `${t.idp.issuer}/` }))),
  },
  {
    name: 'a typ that is not an access token (dpop+jwt)',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims(), { header: { typ: 'dpop+jwt' } })),
  },
  {
    name: 'no sub: no caller id',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ sub: undefined }))),
  },
  {
    name: 'a repeated claim (sub twice: verifiers disagree on which wins)',
    code: 'invalid_token',
    headers: (t) => {
      const c = JSON.stringify(t.claims());
      return bearer(t.idp.mint('ES256', {}, { payloadJson: `${c.slice(0, -1)},"sub":"admin"}` }));
    },
  },
  // ---- JWT: header parameters never followed ----
  {
    name: 'a crit header',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims(), { header: { crit: ['exp'] } })),
  },
  {
    name: 'a jku header pointing at an attacker JWKS',
    code: 'invalid_token',
    headers: (t) => bearer(mint(t.attacker, t.claims(), { header: { jku: `${t.attackerUrl}/jwks.json` } })),
  },
  {
    name: 'an x5u header pointing at an attacker certificate',
    code: 'invalid_token',
    headers: (t) => bearer(mint(t.attacker, t.claims(), { header: { x5u: `${t.attackerUrl}/cert.pem` } })),
  },
  {
    name: "a jwk header embedding the attacker's key",
    code: 'invalid_token',
    headers: (t) => bearer(mint(t.attacker, t.claims(), { header: { jwk: t.attacker.jwk } })),
  },
  // ---- JWT: size and shape ----
  {
    name: 'an oversized token (9 KiB, validly signed)',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', t.claims({ pad: 'x'.repeat(9 * 1024) }))),
  },
  {
    name: 'a payload that is not JSON',
    code: 'invalid_token',
    headers: (t) => bearer(t.idp.mint('ES256', {}, { payloadJson: '{"iss":' })),
  },
  // ---- where the credential is ----
  {
    name: 'a valid JWT in x-api-key',
    code: 'missing_api_key',
    headers: (t) => ({ 'x-api-key': t.idp.mint('ES256', t.claims()) }),
  },
  {
    name: 'both Authorization and x-api-key, each valid',
    code: 'missing_api_key',
    headers: (t) => ({ ...bearer(t.idp.mint('ES256', t.claims())), 'x-api-key': t.alice.key }),
  },
  {
    name: 'Basic auth',
    code: 'missing_api_key',
    headers: (t) => ({ authorization: `Basic ${Buffer.from(`alice:${t.alice.key}`).toString('base64')}` }),
  },
  { name: 'Bearer with nothing after it', code: 'missing_api_key', headers: () => ({ authorization: 'Bearer ' }) },
  { name: 'no credential at all', code: 'missing_api_key', headers: () => ({}) },
  {
    name: 'spoofed x-lmgate-* identity headers and no credential',
    code: 'missing_api_key',
    headers: () => ({ 'x-lmgate-tenant': 'acme', 'x-lmgate-principal': 'alice', 'x-lmgate-key-id': 'alice' }),
  },
  // ---- API keys ----
  { name: 'an unknown API key', code: 'invalid_api_key', headers: () => bearer(`lmg_${'A'.repeat(43)}`) },
  { name: 'a disabled API key', code: 'invalid_api_key', headers: (t) => bearer(t.disabled.key) },
  {
    name: 'a disabled API key in x-api-key',
    code: 'invalid_api_key',
    headers: (t) => ({ 'x-api-key': t.disabled.key }),
  },
  { name: 'an expired API key', code: 'invalid_api_key', headers: (t) => bearer(t.expired.key) },
  {
    name: 'the right key id with another secret',
    code: 'invalid_api_key',
    headers: (t) => bearer(makeKey(t.alice.id).key),
  },
  {
    name: 'an old secret after its rotation grace ended',
    code: 'invalid_api_key',
    headers: (t) => bearer(t.rotatedAway),
  },
  {
    name: 'a key in the retired format (no id)',
    code: 'invalid_api_key',
    headers: () => bearer(`lmg_${randomBytes(32).toString('base64url')}`),
  },
  {
    name: "a key with the secret's length cut short",
    code: 'invalid_api_key',
    headers: (t) => bearer(t.alice.key.slice(0, -3)),
  },
  {
    name: 'a spoofed x-forwarded-client-cert naming a SPIFFE id, and no credential (mTLS not configured)',
    code: 'missing_api_key',
    headers: () => ({
      'x-forwarded-client-cert': 'By=spiffe://acme.example/gate;Hash=00;URI=spiffe://acme.example/ns/prod/sa/admin',
    }),
  },
  {
    name: 'a valid API key with a character changed',
    code: 'invalid_api_key',
    headers: (t) => bearer(`${t.alice.key.slice(0, -1)}${t.alice.key.endsWith('A') ? 'B' : 'A'}`),
  },
];

let idp: TestOidc;
let attackerServer: Server;
const attackerHits: string[] = [];
let stack: Stack;
let gate: Gate;
const alice = makeKey('alice', { tenant: 'acme' });
const disabled = makeKey('old', { tenant: 'acme' });
const expired = makeKey('expired', { tenant: 'acme' });
const rotatedAway = makeKey('alice').key;
let tools: Tools;

beforeAll(async () => {
  idp = await TestOidc.start({ clients: { app: {} } });
  const attacker = makeSigningKey('ES256', 'attacker-kid');
  attackerServer = createServer((req, res) => {
    attackerHits.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [attacker.jwk] }));
  });
  await new Promise<void>((r) => attackerServer.listen(0, '127.0.0.1', r));
  stack = await startStack({
    keys: [],
    gateExtra: {
      identity: {
        // alice, and a disabled key that must fail exactly like an unknown one.
        // An expired key, and alice's secret before a rotation whose grace has ended.
        apiKeys: [alice, disabled, expired].map((k) => ({
          id: k.id,
          sha256: hashApiKey(k.key),
          tenant: k.tenant,
          disabled: k === disabled,
          ...(k === expired ? { expiresAt: '2026-01-01T00:00:00Z' } : {}),
          ...(k === alice ? { previous: { sha256: hashApiKey(rotatedAway), expiresAt: '2026-01-01T00:00:00Z' } } : {}),
        })),
        jwt: {
          issuers: [
            {
              issuer: idp.issuer,
              allowHttpLoopback: true,
              audiences: [AUDIENCE],
              algorithms: ['RS256', 'ES256', 'EdDSA'],
              tenant: 'acme',
            },
          ],
        },
      },
    },
  });
  gate = stack.gate;
  tools = {
    idp,
    claims: (over = {}) => validClaims(idp.issuer, AUDIENCE, over),
    attacker,
    attackerUrl: `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}`,
    alice,
    disabled,
    expired,
    rotatedAway,
  };
});
afterAll(async () => {
  await stack?.stop();
  await idp?.stop();
  attackerServer?.close();
});

describe('identity attack table, through real Envoy', () => {
  it('the table has at least 30 attacks, and a valid token and key do pass (so the 401s mean something)', async () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(30);
    for (const headers of [bearer(await idp.token('app', 'ES256')), bearer(alice.key)]) {
      const res = await fetch(`${stack.baseURL}/models`, { headers });
      expect(res.status).toBe(200);
    }
  });

  ROWS.forEach((row, i) => {
    it(`401 ${row.code}: ${row.name}`, async () => {
      const id = `attack-${i}`;
      const headers = await row.headers(tools);
      const before = stack.mock.received.length;
      const res = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id, ...headers },
        body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi' }] }),
      });
      const text = await res.text();
      expect(res.status).toBe(401);
      expect(JSON.parse(text).error).toMatchObject({ type: 'authentication_error', code: row.code });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="lm-gate"/);
      for (const v of Object.values(headers)) if (v.length > 16) expect(text).not.toContain(v.slice(-16));
      expect(stack.mock.received.length).toBe(before);
      const rec = await gate.auditFor(id);
      expect(rec).toMatchObject({ status: 401, outcome: 'rejected', principal: null, error: { code: row.code } });
    });
  });

  it('every attack left exactly one audit record, and none a credential', async () => {
    const records = await gate.audit();
    for (let i = 0; i < ROWS.length; i++)
      expect(
        records.filter((r) => r.request_id === `attack-${i}`),
        ROWS[i]!.name,
      ).toHaveLength(1);
    const text = JSON.stringify(records);
    expect(text).not.toContain(alice.key);
    expect(text).not.toContain('eyJ');
  });

  it('no header made the gate fetch from where the token pointed (jku, x5u)', () => {
    expect(attackerHits).toEqual([]);
  });
});
