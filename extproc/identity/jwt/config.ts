// The `identity.jwt` config section: the OIDC issuers whose access tokens the gate accepts, how
// their signing keys are fetched and cached, and how a token's claims become the principal.
import { z } from 'zod';
import { parseClaimPath } from './claim-path.ts';
import { keyUrlProblem } from './key-url.ts';
import { PRESET_NAMES } from './presets.ts';

/** Asymmetric JWS algorithms only: `none` and the HMAC family (HS*) are not on the list, so a
 * token cannot choose them, and a public key can never be used as an HMAC secret. Ed25519 is
 * the fully specified name (RFC 9864) of what EdDSA means with an Ed25519 key. */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const claimPath = z.string().superRefine((text, ctx) => {
  const parsed = parseClaimPath(text);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
});
const claimPaths = z.union([claimPath, z.array(claimPath).min(1)]);

export const jwtClaimsConfig = z
  .object({
    id: claimPaths
      .optional()
      .describe(
        "Claim path(s) of the caller's stable id (principal id, sent upstream as x-lmgate-principal); with a list, the first present wins. Unset: the preset's, else sub. A token without it is refused.",
      )
      .meta({ examples: ['sub'] }),
    team: claimPaths
      .optional()
      .describe("Claim path(s) of the caller's team. Unset: the preset's, else none.")
      .meta({ examples: ['department'] }),
    user: claimPaths
      .optional()
      .describe("Claim path(s) of the person or service calling. Unset: the preset's, else none.")
      .meta({ examples: ['preferred_username'] }),
    roles: claimPaths
      .optional()
      .describe(
        "Claim path(s) of role names, each a string or a list of strings; every path present adds its roles. Unset: the preset's, else none.",
      )
      .meta({ examples: [['realm_access.roles', 'groups']] }),
    attributes: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), claimPath)
      .default({})
      .describe(
        "Further principal attributes: name → claim path ({ client_id: azp }). A string, number or boolean value is kept as text; other values are left out. Merged over the preset's.",
      ),
  })
  .strict();

export const jwtIssuerConfig = z
  .object({
    issuer: z
      .string()
      .min(1)
      .describe(
        "The issuer exactly as tokens carry it in iss (the gate picks the issuer by a token's iss before verifying; any other iss is refused). Without jwksUri, its keys are found by OIDC discovery at {issuer}/.well-known/openid-configuration, whose issuer must equal this and whose jwks_uri must be https.",
      )
      .meta({ examples: ['https://login.microsoftonline.com/<tenant-id>/v2.0'] }),
    jwksUri: z
      .string()
      .min(1)
      .optional()
      .describe('Where the signing keys (a JWKS) are, when not by discovery. Must be https.')
      .meta({ examples: ['https://idp.example.com/oauth2/v1/keys'] }),
    allowHttpLoopback: z
      .boolean()
      .default(false)
      .describe(
        'Also accept http:// issuer and key URLs on 127.0.0.1, [::1] or localhost: for a test IdP, never for a real one.',
      ),
    audiences: z
      .array(z.string().min(1))
      .min(1)
      .describe("Tokens must carry one of these in aud: the gate's own identifiers at this issuer.")
      .meta({ examples: [['api://lm-gate']] }),
    algorithms: z
      .array(z.enum(JWT_ALGORITHMS))
      .min(1)
      .default(['RS256'])
      .describe(
        `Signature algorithms accepted, among ${JWT_ALGORITHMS.join(', ')}; a key is used only with an algorithm of its own type (RSA, EC curve, Ed25519). none and HS* cannot be configured.`,
      ),
    types: z
      .array(z.string().min(1))
      .min(1)
      .default(['at+jwt', 'JWT'])
      .describe(
        'Accepted values of the token header typ, compared case-insensitively and with an optional application/ prefix (RFC 7515). at+jwt is the access-token type of RFC 9068.',
      ),
    requireType: z
      .boolean()
      .default(false)
      .describe(
        'Refuse tokens without a typ header. Okta leaves typ out of its access tokens; Azure AD and Keycloak send JWT.',
      ),
    preset: z
      .enum(PRESET_NAMES)
      .optional()
      .describe(
        `Claim mapping of a known IdP (${PRESET_NAMES.join(', ')}; see README); claims set below override it field by field.`,
      )
      .meta({ examples: ['keycloak'] }),
    tenant: z
      .union([z.string().min(1), z.object({ claim: claimPaths }).strict()])
      .describe(
        "The caller's tenant: a constant for every caller of this issuer (acme), or { claim: <path(s)> } to read it from the token (Azure AD: { claim: tid }); a token without that claim is refused.",
      )
      .meta({ examples: [{ claim: 'tid' }] }),
    claims: jwtClaimsConfig.prefault({}).describe('Where each principal field is read from the token.'),
  })
  .strict()
  .superRefine((iss, ctx) => {
    const issuerProblem = keyUrlProblem(iss.issuer, iss.allowHttpLoopback);
    // Discovery fetches from the issuer URL; with an explicit jwksUri the issuer is only
    // compared, and any string an IdP uses is acceptable.
    if (iss.jwksUri === undefined && issuerProblem !== undefined)
      ctx.addIssue({ code: 'custom', path: ['issuer'], message: `discovery URL ${issuerProblem}` });
    if (iss.jwksUri !== undefined) {
      const problem = keyUrlProblem(iss.jwksUri, iss.allowHttpLoopback);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: problem });
    }
  });

export const jwksConfig = z
  .object({
    timeoutMs: z
      .number()
      .int()
      .positive()
      .max(30_000)
      .default(2000)
      .describe('Milliseconds one discovery or JWKS fetch may take before it counts as failed.'),
    maxResponseBytes: z
      .number()
      .int()
      .positive()
      .default(262_144)
      .describe('Discovery and JWKS responses larger than this are refused (and the fetch counts as failed).'),
    refreshMs: z
      .number()
      .int()
      .positive()
      .default(300_000)
      .describe(
        "Milliseconds between background refreshes of an issuer's keys when its JWKS response has no Cache-Control max-age; a max-age is honoured within minRefreshMs and maxRefreshMs.",
      ),
    minRefreshMs: z
      .number()
      .int()
      .positive()
      .default(60_000)
      .describe('Shortest interval between background refreshes, whatever max-age an IdP sends.'),
    maxRefreshMs: z
      .number()
      .int()
      .positive()
      .default(3_600_000)
      .describe('Longest interval between background refreshes, whatever max-age an IdP sends.'),
    unknownKidCooldownMs: z
      .number()
      .int()
      .nonnegative()
      .default(30_000)
      .describe(
        "A token signed with a key id not in the cache makes the gate refetch that issuer's keys at most once per this many milliseconds; other such tokens in between are refused at once, so made-up key ids cannot hammer the IdP.",
      ),
    keyWaitMs: z
      .number()
      .int()
      .positive()
      .default(100)
      .describe(
        'Milliseconds a request waits for keys being fetched (an unknown key id, or the first keys after start) before it is refused with 401; must be under server.messageDeadlineMs. The fetch itself goes on in the background.',
      ),
    failureBackoffMaxMs: z
      .number()
      .int()
      .positive()
      .default(60_000)
      .describe(
        'After a failed fetch, the next is attempted after 1 s, doubling per consecutive failure up to this; meanwhile cached keys keep working and requests needing a new key are refused at once.',
      ),
  })
  .strict()
  .superRefine((j, ctx) => {
    if (j.minRefreshMs > j.maxRefreshMs)
      ctx.addIssue({ code: 'custom', path: ['minRefreshMs'], message: 'must not exceed maxRefreshMs' });
  });

export const jwtConfig = z
  .object({
    issuers: z
      .array(jwtIssuerConfig)
      .default([])
      .describe(
        'The issuers whose JWT access tokens callers may present as "Authorization: Bearer <token>". With none, JWTs are refused with 401.',
      ),
    maxTokenBytes: z
      .number()
      .int()
      .min(1024)
      .max(65_536)
      .default(8192)
      .describe('Tokens longer than this are refused before they are decoded.'),
    clockToleranceSeconds: z
      .number()
      .int()
      .nonnegative()
      .max(300)
      .default(30)
      .describe(
        'Seconds of clock skew allowed when checking exp, nbf and iat (a token issued further in the future than this is refused).',
      ),
    cachedTokens: z
      .number()
      .int()
      .nonnegative()
      .max(100_000)
      .default(1024)
      .describe(
        "Verified tokens remembered by their exact text until they expire, so a client reusing its token is admitted without a second signature check; an entry ends early when its signing key leaves the issuer's JWKS. The oldest is dropped when full; 0 verifies every request.",
      ),
    jwks: jwksConfig
      .prefault({})
      .describe("How issuers' signing keys are fetched and cached (process-wide, across reloads)."),
  })
  .strict()
  .superRefine((jwt, ctx) => {
    const seen = new Set<string>();
    jwt.issuers.forEach((iss, i) => {
      if (seen.has(iss.issuer))
        ctx.addIssue({ code: 'custom', path: ['issuers', i, 'issuer'], message: `duplicate issuer "${iss.issuer}"` });
      seen.add(iss.issuer);
    });
  })
  .prefault({})
  .describe('JWT access tokens from OIDC issuers (Okta, Azure AD, Keycloak, …).');

export type JwtConfig = z.infer<typeof jwtConfig>;
export type JwtIssuerConfig = z.infer<typeof jwtIssuerConfig>;
export type JwtClaimsConfig = z.infer<typeof jwtClaimsConfig>;
export type JwksConfig = z.infer<typeof jwksConfig>;
