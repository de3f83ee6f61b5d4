import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { buildPipeline, STAGE_ORDER } from './build.ts';

const names = (yaml: string) => buildPipeline(parseConfig(yaml, 'test.yaml', {})).stages.map((s) => s.name);

describe('buildPipeline', () => {
  const table: { name: string; yaml: string; want: string[] }[] = [
    { name: 'every stage by default', yaml: '', want: [...STAGE_ORDER] },
    { name: 'none: pass-through', yaml: 'pipeline: { stages: [] }', want: [] },
    {
      name: 'the fixed order, whatever order the list is written in',
      yaml: 'pipeline: { stages: [metering.usage, llm.api_shape, identity.api_key] }',
      want: ['identity.api_key', 'llm.api_shape', 'metering.usage'],
    },
  ];
  for (const t of table) it(t.name, () => expect(names(t.yaml)).toEqual(t.want));

  it('a pass-through pipeline asks for no response body', () => {
    expect(buildPipeline(parseConfig('pipeline: { stages: [] }', 'x', {})).wantsResponseBody).toBe(false);
  });

  const refused: [string, string][] = [
    ['policy.access', 'stage "policy.access" needs "identity.api_key"'],
    ['identity.api_key, policy.access', 'stage "policy.access" needs "llm.api_shape"'],
    ['metering.usage', 'stage "metering.usage" needs "llm.api_shape"'],
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
});
