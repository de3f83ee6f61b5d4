// The `identity` config section: the API keys callers present, each stored only as its SHA-256,
// with who the caller is and what the policy stage lets it use; the keys file, whose entries
// have the same shape (config/keys-file.ts reads it); the JWT issuers (jwt/config.ts); and client
// certificates (mtls-config.ts).
import { z } from 'zod';
import { API_KINDS } from '../llm/apis.ts';
import { KEY_ID_PATTERN } from './api-keys.ts';
import { jwtConfig } from './jwt/config.ts';
import { mtlsConfig } from './mtls-config.ts';

/** Patterns with `*` wildcards, for models: "*", "gpt-*", "llama-3.1-*-instruct". */
const patterns = z.array(z.string().min(1)).min(1);

/** The API kinds a key's endpoints may name, from the API table. */
export const endpointNames = API_KINDS;

const sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'expected the lowercase hex SHA-256 of the key (lm-gate keys create prints it)');

/** RFC 3339 with a time zone ("2026-01-31T00:00:00Z", "...+01:00"); zod also refuses dates that
 * do not exist (February 30). */
export const rfc3339 = z.iso.datetime({
  offset: true,
  message: 'expected an RFC 3339 date-time with a time zone, for example 2026-01-31T00:00:00Z',
});

/** String maps an operator writes by hand: non-empty keys, string values. */
const stringMap = z.record(z.string().min(1), z.string());

export const apiKeyConfig = z
  .object({
    id: z
      .string()
      .regex(KEY_ID_PATTERN, 'key ids are 1-64 characters of A-Z a-z 0-9 . _ -')
      .describe(
        'Stable identifier of the key, 1-64 characters of A-Z a-z 0-9 . _ -; the key itself (lmg_<id>_<secret>) carries it, so the gate finds the entry by id. Appears in audit records, metrics, the x-lmgate-key-id header sent upstream and the rule ids of 403s, never the key itself. Unique among the keys of the config and the keys file.',
      )
      .meta({ examples: ['team-a'] }),
    sha256: sha256
      .describe(
        'Lowercase hex SHA-256 of the whole key, as `lm-gate keys create` prints it. The key itself is never stored, so a leaked config leaks no credential. Unique among the keys.',
      )
      .meta({ examples: ['<sha256 printed by lm-gate keys create>'] }),
    tenant: z
      .string()
      .min(1)
      .describe(
        'Tenant the caller belongs to: sent upstream as the x-lmgate-tenant header, set as Envoy dynamic metadata lm_gate.tenant and recorded in every audit record.',
      )
      .meta({ examples: ['acme'] }),
    team: z
      .string()
      .min(1)
      .optional()
      .describe('Team of the caller within the tenant, recorded in audit records. Unset: recorded as null.')
      .meta({ examples: ['research'] }),
    user: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Person or service the key was issued to, recorded in audit records. Unset: recorded as null, and the key id is the only trace of who called.',
      )
      .meta({ examples: ['alice'] }),
    roles: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Role names carried with the caller through the pipeline. No shipped stage acts on them yet; they grant nothing by themselves.',
      ),
    models: patterns
      .default(['*'])
      .describe(
        'Models this key may request, as patterns where * matches any run of characters ("llama-3.1-*"). Any other model is refused with 403 model_not_allowed once the request body names it.',
      ),
    endpoints: z
      .array(z.union([z.enum(endpointNames), z.literal('*')]))
      .min(1)
      .default(['*'])
      .describe(
        `API endpoints this key may call: * for all, or any of ${endpointNames.join(', ')}. Any other is refused with 403 endpoint_not_allowed; only * also reaches paths outside the LLM APIs when policy.unknownEndpoints is allow.`,
      ),
    attributes: stringMap
      .default({})
      .describe(
        'Facts about the caller that policy may read (principal.attributes), as a JWT claim or a certificate field would give them for other callers: {department: claims}.',
      ),
    expiresAt: rfc3339
      .optional()
      .describe(
        'When the key stops working, RFC 3339 with a time zone. From then on it is refused with 401 exactly like an unknown key. Unset: it does not expire.',
      )
      .meta({ examples: ['2026-01-31T00:00:00Z'] }),
    disabled: z
      .boolean()
      .default(false)
      .describe(
        'A disabled key is refused with 401 exactly like an unknown one, so its holder cannot tell it was revoked. Revokes a key without losing its entry.',
      ),
    labels: stringMap
      .default({})
      .describe(
        'Notes for operators (owner, ticket, purpose), shown by `lm-gate keys list`. The gate and its policy never read them: facts policy acts on go in attributes.',
      ),
    previous: z
      .object({
        sha256: sha256
          .describe("Lowercase hex SHA-256 of the key's previous secret.")
          .meta({ examples: ['<sha256 of the key before its last rotation>'] }),
        expiresAt: rfc3339
          .describe('When the previous secret stops working, RFC 3339 with a time zone.')
          .meta({ examples: ['2026-01-08T00:00:00Z'] }),
      })
      .strict()
      .optional()
      .describe(
        "The secret the key had before `lm-gate keys rotate --grace` replaced it: accepted beside the new one until its expiresAt, so the key's holders can move over without an outage. The key's disabled and expiresAt apply to it too. Delete it to end the grace at once. Unset: only sha256 is accepted.",
      ),
  })
  .strict();

/** Issues for keys that repeat an id or a hash within one list (the config's, the keys file's). */
export function duplicateKeyIssues(
  keys: readonly { id: string; sha256: string; previous?: { sha256: string } | undefined }[],
): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const ids = new Set<string>();
  const hashes = new Set<string>();
  keys.forEach((k, i) => {
    if (ids.has(k.id)) issues.push({ path: [i, 'id'], message: `duplicate key id "${k.id}"` });
    ids.add(k.id);
    for (const [path, hash] of [
      [[i, 'sha256'], k.sha256],
      [[i, 'previous', 'sha256'], k.previous?.sha256],
    ] as const) {
      if (hash === undefined) continue;
      if (hashes.has(hash)) issues.push({ path: [...path], message: 'duplicate key hash' });
      hashes.add(hash);
    }
  });
  return issues;
}

export const identityConfig = z
  .object({
    apiKeys: z
      .array(apiKeyConfig)
      .default([])
      .describe(
        'The API keys callers present as "Authorization: Bearer <key>" or x-api-key. Unknown keys are refused with 401. With none here and no keysFile, every request is refused while the identity.authenticate stage runs.',
      ),
    jwt: jwtConfig,
    mtls: mtlsConfig.optional(),
    keysFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A file of further API keys, YAML or JSON: {keys: [...]}, each entry shaped like an apiKeys entry; `lm-gate keys create|list|revoke|rotate --file` edit it. Meant for a Kubernetes Secret mounted as a volume. Relative to the directory of this config file. Reloaded like the config when it changes (an invalid one is rejected and the previous keys keep serving); its key ids must differ from those in apiKeys. A file that cannot be read at start stops the gate.',
      )
      .meta({ examples: ['/etc/lm-gate/keys/keys.yaml'] }),
  })
  .strict()
  .superRefine((identity, ctx) => {
    for (const issue of duplicateKeyIssues(identity.apiKeys))
      ctx.addIssue({ code: 'custom', path: ['apiKeys', ...issue.path], message: issue.message });
  })
  .prefault({})
  .describe(
    'Who is calling: the API keys, JWT issuers and client certificates the gate accepts, and the caller each stands for. With none, every request is refused while the identity.authenticate stage runs.',
  );
