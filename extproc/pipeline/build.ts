// The ordered stages for one config snapshot: every `always` stage, and the optional ones
// pipeline.stages chose, in the composition root's order.
import type { Config } from '../config/schema.ts';
import { Pipeline } from './pipeline.ts';
import type { StageDeps, StageDescriptor } from './stage.ts';
import { STAGES, stageGraphProblems } from './stages.ts';

export function buildPipeline(config: Config, deps: StageDeps, catalog: readonly StageDescriptor[] = STAGES): Pipeline {
  const chosen = new Set<string>(config.pipeline.stages);
  // The config schema refuses a broken graph for the shipped catalog; a test's catalog gets the
  // same check here.
  const problems = stageGraphProblems(chosen, catalog);
  if (problems.length > 0) throw new Error(`pipeline: ${problems.join('; ')}`);
  return new Pipeline(
    catalog.filter((d) => d.always || chosen.has(d.name)).map((d) => ({ name: d.name, stage: d.create(config, deps) })),
  );
}
