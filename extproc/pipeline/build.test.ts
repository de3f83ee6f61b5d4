import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { KeyRegistry } from '../identity/jwt/key-registry.ts';
import { KillBoard } from '../killswitch/kill-set.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { buildPipeline } from './build.ts';
import { defineStage, type StageDeps, systemClock } from './stage.ts';
import { ALWAYS_STAGE_NAMES, STAGE_NAMES, STAGES, stageGraphProblems } from './stages.ts';

const logger = (await import('pino')).pino({ level: 'silent' });
const metrics = new Metrics({ defaultMetrics: false });
const deps: StageDeps = {
  logger,
  metrics,
  clock: systemClock,
  jwtKeys: new KeyRegistry({ metrics, logger, clock: systemClock }),
  kills: new KillBoard(),
};
const names = (yaml: string) => buildPipeline(parseConfig(yaml, 'test.yaml', {}), deps).names;

describe('buildPipeline', () => {
  const table: { name: string; yaml: string; want: string[] }[] = [
    { name: 'every stage by default', yaml: '', want: STAGES.map((s) => s.name) },
    { name: 'none chosen: only the stages that always run', yaml: 'pipeline: { stages: [] }', want: ['http.hygiene'] },
    {
      name: 'the fixed order, whatever order the list is written in',
      yaml: 'pipeline: { stages: [metering.usage, llm.api_shape, identity.authenticate] }',
      want: ['http.hygiene', 'identity.authenticate', 'llm.api_shape', 'metering.usage'],
    },
  ];
  for (const t of table) it(t.name, () => expect(names(t.yaml)).toEqual(t.want));

  it('the config enum lists exactly the optional stages, and hygiene is not among them', () => {
    expect(STAGE_NAMES).toEqual([
      'identity.authenticate',
      'killswitch.principal',
      'llm.api_shape',
      'dlp.request',
      'guard.injection',
      'limits.budget',
      'routing.route',
      'killswitch.model',
      'policy.access',
      'policy.rules',
      'policy.model_list',
      'limits.rate',
      'metering.usage',
      'dlp.response',
    ]);
    expect(ALWAYS_STAGE_NAMES).toEqual(['http.hygiene']);
  });

  it('a pass-through pipeline asks for no response body', () => {
    expect(buildPipeline(parseConfig('pipeline: { stages: [] }', 'x', {}), deps).wantsResponseBody).toBe(false);
  });

  const refused: [string, string][] = [
    ['policy.access', 'stage "policy.access" needs the principal fact, which "identity.authenticate" provides: add it'],
    [
      'identity.authenticate, policy.access',
      'stage "policy.access" needs the parsed fact, which "llm.api_shape" provides',
    ],
    ['metering.usage', 'stage "metering.usage" needs the parsed fact'],
  ];
  for (const [stages, message] of refused) {
    it(`refuses [${stages}]: ${message}, rather than a stage that silently checks nothing`, () => {
      expect(() => parseConfig(`pipeline: { stages: [${stages}] }`, 'x', {})).toThrow(message);
    });
  }

  it('rejects an unknown or repeated stage name', () => {
    expect(() => parseConfig('pipeline: { stages: [dlp.scan] }', 'x', {})).toThrow(/pipeline.stages\[0\]/);
    expect(() => parseConfig('pipeline: { stages: [policy.access, policy.access] }', 'x', {})).toThrow(
      /pipeline.stages: stage "policy.access" listed twice/,
    );
  });

  it('a need is met only by a stage that runs before it', () => {
    const late = defineStage({
      name: 'test.provider',
      summary: 'provides a route, but after its consumer',
      needs: [],
      provides: ['route'],
      create: () => ({}),
    });
    const consumer = defineStage({
      name: 'test.consumer',
      summary: 'needs a route',
      needs: ['route'],
      provides: [],
      create: () => ({}),
    });
    const chosen = new Set(['test.provider', 'test.consumer']);
    expect(stageGraphProblems(chosen, [late, consumer])).toEqual([]);
    expect(stageGraphProblems(new Set(['test.consumer']), [late, consumer])).toEqual([
      'stage "test.consumer" needs the route fact, which "test.provider" provides: add it',
    ]);
    expect(stageGraphProblems(chosen, [consumer, late])).toEqual([
      'stage "test.consumer" needs the route fact, but "test.provider" runs after it',
    ]);
  });
});
