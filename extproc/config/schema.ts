// The configuration schema: the single source of truth for what LM Gate accepts, its defaults
// and what each field means. Each capability owns its section (extproc/<capability>/config.ts);
// this file composes them. README's config reference and docs/lm-gate.schema.json are generated
// from it (npm run config:docs) and a unit test fails when they drift.
import { z } from 'zod';
import { auditConfig } from '../audit/config.ts';
import { identityConfig } from '../identity/config.ts';
import { meteringConfig } from '../metering/config.ts';
import { policyConfig } from '../policy/config.ts';
import { serverConfig } from '../server/config.ts';
import { loggingConfig } from '../telemetry/config.ts';

export { endpointNames } from '../identity/config.ts';

/** Every stage, in the order they run: who is calling (401) before what they ask for (400/404)
 * before whether they may (403) before metering. The order is policy, not configuration. */
export const stageNames = ['identity.api_key', 'llm.api_shape', 'policy.access', 'metering.usage'] as const;

/** Stages that read what another decides: without it they would silently check nothing (policy
 * without the parsed body skips the model rule), so such a config is refused. */
const stageNeeds: Partial<Record<(typeof stageNames)[number], (typeof stageNames)[number][]>> = {
  'policy.access': ['identity.api_key', 'llm.api_shape'],
  'metering.usage': ['llm.api_shape'],
};

export const configSchema = z
  .object({
    server: serverConfig,
    logging: loggingConfig,
    pipeline: z
      .object({
        stages: z
          .array(z.enum(stageNames))
          .default([...stageNames])
          .describe(
            `Stages to run; they always run in their fixed order (${stageNames.join(', ')}). [] runs none: a pass-through gate that still audits every request and meters nothing. Leaving out identity.api_key lets unauthenticated requests through. policy.access needs identity.api_key and llm.api_shape; metering.usage needs llm.api_shape.`,
          ),
      })
      .strict()
      .default({ stages: [...stageNames] }),
    identity: identityConfig,
    policy: policyConfig,
    metering: meteringConfig,
    audit: auditConfig,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const stages = new Set<string>();
    for (const s of cfg.pipeline.stages) {
      if (stages.has(s))
        ctx.addIssue({ code: 'custom', path: ['pipeline', 'stages'], message: `stage "${s}" listed twice` });
      stages.add(s);
    }
    for (const s of stages) {
      for (const need of stageNeeds[s as keyof typeof stageNeeds] ?? []) {
        if (!stages.has(need))
          ctx.addIssue({ code: 'custom', path: ['pipeline', 'stages'], message: `stage "${s}" needs "${need}"` });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ApiKeyConfig = Config['identity']['apiKeys'][number];
