// The `identity` config section: the API keys callers present, each stored only as its SHA-256,
// with who the caller is and what the policy stage lets it use; and the JWT issuers
// (identity.jwt, its own file).
import { z } from 'zod';
import { API_KINDS } from '../llm/apis.ts';
import { jwtConfig } from './jwt/config.ts';

/** Patterns with `*` wildcards, for models: "*", "gpt-*", "llama-3.1-*-instruct". */
const patterns = z.array(z.string().min(1)).min(1);

/** The API kinds a key's endpoints may name, from the API table. */
export const endpointNames = API_KINDS;

export const apiKeyConfig = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'key ids are 1-64 characters of A-Z a-z 0-9 . _ -')
      .describe(
        'Stable identifier of the key, 1-64 characters of A-Z a-z 0-9 . _ -; appears in audit records, metrics, the x-lmgate-key-id header sent upstream and the rule ids of 403s, never the key itself. Unique among the keys.',
      )
      .meta({ examples: ['team-a'] }),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'expected the lowercase hex SHA-256 of the key (lm-gate keys create prints it)')
      .describe(
        'Lowercase hex SHA-256 of the key, as `lm-gate keys create` prints it. The key itself is never stored in the config, so a leaked config leaks no credential. Unique among the keys.',
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
    disabled: z
      .boolean()
      .default(false)
      .describe(
        'A disabled key is refused with 401 exactly like an unknown one, so its holder cannot tell it was revoked. Revokes a key without losing its entry.',
      ),
  })
  .strict();

export const identityConfig = z
  .object({
    apiKeys: z
      .array(apiKeyConfig)
      .default([])
      .describe(
        'The API keys callers present as "Authorization: Bearer <key>" or x-api-key. Unknown keys are refused with 401.',
      ),
    jwt: jwtConfig,
  })
  .strict()
  .superRefine((identity, ctx) => {
    const ids = new Set<string>();
    const hashes = new Set<string>();
    identity.apiKeys.forEach((k, i) => {
      if (ids.has(k.id))
        ctx.addIssue({ code: 'custom', path: ['apiKeys', i, 'id'], message: `duplicate key id "${k.id}"` });
      if (hashes.has(k.sha256))
        ctx.addIssue({ code: 'custom', path: ['apiKeys', i, 'sha256'], message: 'duplicate key hash' });
      ids.add(k.id);
      hashes.add(k.sha256);
    });
  })
  .prefault({})
  .describe(
    'Who is calling: the API keys and JWT issuers the gate accepts, and the caller each stands for. With neither, every request is refused while the identity.authenticate stage runs.',
  );
