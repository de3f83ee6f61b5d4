// The `policy` config section: gate-wide rules of the policy.access stage. What one caller may
// use is set on its API key (identity.apiKeys[].models and .endpoints).
import { z } from 'zod';

export const policyConfig = z
  .object({
    unknownEndpoints: z
      .enum(['reject', 'allow'])
      .default('reject')
      .describe(
        'Paths that are not a known LLM API (OpenAI, Ollama): reject refuses them with 404 for every caller; allow lets them through for authenticated callers whose key has endpoints ["*"], unparsed and unmetered, and refuses other keys with 403.',
      ),
  })
  .strict()
  .prefault({})
  .describe('Gate-wide access rules of the policy.access stage; what each caller may use is set on its API key.');
