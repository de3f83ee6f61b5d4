// The ordered stages for one config snapshot. Order is policy: who is calling (401) before what
// they ask for (400/404) before whether they may (403) before metering.
import type { Config } from '../config/schema.ts';
import { apiKeyStage } from '../identity/api-key-stage.ts';
import { usageStage } from '../metering/usage-stage.ts';
import { accessStage } from '../policy/access-stage.ts';
import { apiShapeStage } from './api-shape-stage.ts';
import { Pipeline } from './pipeline.ts';

export function buildPipeline(config: Config): Pipeline {
  return new Pipeline([apiKeyStage(config), apiShapeStage(), accessStage(config), usageStage(config)]);
}
