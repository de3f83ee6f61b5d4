// The ordered stages for one config snapshot. Order is policy (see stageNames); the config only
// chooses which of them run.
import { type Config, stageNames } from '../config/schema.ts';
import { apiKeyStage } from '../identity/api-key-stage.ts';
import type { ParsePool } from '../llm/parse-pool.ts';
import { usageStage } from '../metering/usage-stage.ts';
import { accessStage } from '../policy/access-stage.ts';
import { apiShapeStage } from './api-shape-stage.ts';
import { Pipeline } from './pipeline.ts';
import type { Stage } from './stage.ts';

export const STAGE_ORDER = stageNames;

/** Process-wide services the stages share across config reloads. */
export interface StageDeps {
  parsePool?: ParsePool | undefined;
}

const factories: Record<(typeof stageNames)[number], (config: Config, deps: StageDeps) => Stage> = {
  'identity.api_key': apiKeyStage,
  'llm.api_shape': (_config, deps) => apiShapeStage({ parsePool: deps.parsePool }),
  'policy.access': accessStage,
  'metering.usage': usageStage,
};

export function buildPipeline(config: Config, deps: StageDeps = {}): Pipeline {
  const enabled = new Set(config.pipeline.stages);
  return new Pipeline(STAGE_ORDER.filter((name) => enabled.has(name)).map((name) => factories[name](config, deps)));
}
