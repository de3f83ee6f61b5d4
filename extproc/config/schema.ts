// The configuration schema: the single source of truth for what LM Gate accepts, its defaults
// and what each field means. Each capability owns its section (extproc/<capability>/config.ts);
// this file composes them. README's config reference and docs/lm-gate.schema.json are generated
// from it (npm run config:docs) and a unit test fails when they drift.
import { z } from 'zod';
import { auditConfig } from '../audit/config.ts';
import { dlpConfig } from '../dlp/config.ts';
import { identityConfig } from '../identity/config.ts';
import { killSwitchConfig } from '../killswitch/config.ts';
import { limitsConfig } from '../limits/config.ts';
import { QUEUE_MARGIN_MS } from '../limits/queue.ts';
import { meteringConfig } from '../metering/config.ts';
import { ALWAYS_STAGE_NAMES, STAGE_NAMES, stageGraphProblems } from '../pipeline/stages.ts';
import { policyConfig } from '../policy/config.ts';
import { redisConfig } from '../redis/config.ts';
import { routingConfig } from '../routing/config.ts';
import { serverConfig } from '../server/config.ts';
import { loggingConfig } from '../telemetry/config.ts';

export { endpointNames } from '../identity/config.ts';

/** Which optional stages run. Their names, order and the facts each needs come from the
 * composition root (pipeline/stages.ts). */
const pipelineConfig = z
  .object({
    stages: z
      .array(z.enum(STAGE_NAMES))
      .default([...STAGE_NAMES])
      .describe(
        `Optional stages to run; they always run in their fixed order (${STAGE_NAMES.join(', ')}), after ${ALWAYS_STAGE_NAMES.filter((n) => n !== 'audit.capture').join(', ')}, which always runs (audit.capture too, last, doing nothing without audit.capture.rules). [] runs none: a pass-through gate that still audits every request and meters nothing. Leaving out identity.authenticate lets unauthenticated requests through. A stage that needs a fact another provides (policy.access and policy.rules need the principal from identity.authenticate and the parsed body from llm.api_shape; killswitch.principal needs identity.authenticate, killswitch.model and metering.usage need llm.api_shape) is refused without it, and so are killSwitch lists whose stage is left out.`,
      ),
  })
  .strict()
  .prefault({})
  .describe('The stages that run on every request.');

export const configSchema = z
  .object({
    server: serverConfig,
    logging: loggingConfig,
    pipeline: pipelineConfig,
    identity: identityConfig,
    policy: policyConfig,
    killSwitch: killSwitchConfig,
    routing: routingConfig,
    metering: meteringConfig,
    limits: limitsConfig,
    dlp: dlpConfig,
    audit: auditConfig,
    redis: redisConfig,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const stages = new Set<string>();
    for (const s of cfg.pipeline.stages) {
      if (stages.has(s))
        ctx.addIssue({ code: 'custom', path: ['pipeline', 'stages'], message: `stage "${s}" listed twice` });
      stages.add(s);
    }
    for (const message of stageGraphProblems(stages))
      ctx.addIssue({ code: 'custom', path: ['pipeline', 'stages'], message });
    // A kill nothing would enforce is worse than a refused config: the operator believes it holds.
    const k = cfg.killSwitch;
    for (const [list, stage] of [
      ['keys', 'killswitch.principal'],
      ['users', 'killswitch.principal'],
      ['teams', 'killswitch.principal'],
      ['tenants', 'killswitch.principal'],
      ['models', 'killswitch.model'],
    ] as const) {
      if (k[list].length > 0 && !stages.has(stage))
        ctx.addIssue({
          code: 'custom',
          path: ['killSwitch', list],
          message: `pipeline.stages leaves out ${stage}, so nothing would refuse these; add it`,
        });
    }
    const lim = cfg.limits;
    if (lim.store === 'redis' && cfg.redis === undefined)
      ctx.addIssue({ code: 'custom', path: ['limits', 'store'], message: 'store: redis needs the redis section' });
    const limitIds = new Set<string>();
    for (const [list, entries] of [
      ['rate', lim.rate],
      ['budgets', lim.budgets],
    ] as const)
      entries.forEach((e, i) => {
        // The id names the counters, refusals and metrics: two limits with one id would share them.
        if (limitIds.has(e.id))
          ctx.addIssue({ code: 'custom', path: ['limits', list, i, 'id'], message: `id "${e.id}" is used twice` });
        limitIds.add(e.id);
      });
    lim.budgets.forEach((b, i) => {
      if (b.downgradeTo !== undefined && b.downgradeTo in cfg.routing.aliases)
        ctx.addIssue({
          code: 'custom',
          path: ['limits', 'budgets', i, 'downgradeTo'],
          message: 'must name a model, not a routing alias',
        });
    });
    if (lim.budgets.length > 0 && !stages.has('limits.budget'))
      ctx.addIssue({
        code: 'custom',
        path: ['limits', 'budgets'],
        message: 'pipeline.stages leaves out limits.budget, so nothing would enforce these; add it',
      });
    if (lim.rate.length > 0 && !stages.has('limits.rate'))
      ctx.addIssue({
        code: 'custom',
        path: ['limits', 'rate'],
        message: 'pipeline.stages leaves out limits.rate, so nothing would enforce these; add it',
      });
    const deadline = `must be under server.messageDeadlineMs (${cfg.server.messageDeadlineMs})`;
    // A request waiting for keys must be refused (401) before the message deadline answers 503.
    if (cfg.identity.jwt.issuers.length > 0 && cfg.identity.jwt.jwks.keyWaitMs >= cfg.server.messageDeadlineMs)
      ctx.addIssue({ code: 'custom', path: ['identity', 'jwt', 'jwks', 'keyWaitMs'], message: deadline });
    const opa = cfg.policy.opa;
    // A slower OPA would be cut by the gate's own deadline (503 gateway_timeout) before its timeout.
    if (opa !== undefined && opa.timeoutMs >= cfg.server.messageDeadlineMs)
      ctx.addIssue({ code: 'custom', path: ['policy', 'opa', 'timeoutMs'], message: deadline });
    // A queued request's answer waits queueMs on the slow path, after a store call of its own.
    lim.rate.forEach((r, i) => {
      const most = cfg.server.maxMessageDeadlineMs - QUEUE_MARGIN_MS;
      if (r.queueMs > most)
        ctx.addIssue({
          code: 'custom',
          path: ['limits', 'rate', i, 'queueMs'],
          message: `must be at most server.maxMessageDeadlineMs - ${QUEUE_MARGIN_MS} (${most})`,
        });
    });
    // The injection classifier runs on the slow path: past maxMessageDeadlineMs the gate's 503
    // would answer before its timeout and onError could.
    cfg.dlp.policies.forEach((p, i) => {
      const c = p.injection.classifier;
      if (c !== undefined && c.timeoutMs >= cfg.server.maxMessageDeadlineMs)
        ctx.addIssue({
          code: 'custom',
          path: ['dlp', 'policies', i, 'injection', 'classifier', 'timeoutMs'],
          message: `must be under server.maxMessageDeadlineMs (${cfg.server.maxMessageDeadlineMs})`,
        });
    });
  });

export type Config = z.infer<typeof configSchema>;
export type ApiKeyConfig = Config['identity']['apiKeys'][number];
