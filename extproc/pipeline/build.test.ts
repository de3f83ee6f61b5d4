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
      yaml: 'pipeline: { stages: [metering.usage, identity.api_key] }',
      want: ['identity.api_key', 'metering.usage'],
    },
  ];
  for (const t of table) it(t.name, () => expect(names(t.yaml)).toEqual(t.want));

  it('a pass-through pipeline asks for no response body', () => {
    expect(buildPipeline(parseConfig('pipeline: { stages: [] }', 'x', {})).wantsResponseBody).toBe(false);
  });

  it('rejects an unknown or repeated stage name', () => {
    expect(() => parseConfig('pipeline: { stages: [dlp.scan] }', 'x', {})).toThrow(/pipeline.stages\[0\]/);
    expect(() => parseConfig('pipeline: { stages: [policy.access, policy.access] }', 'x', {})).toThrow(
      /pipeline.stages: stage "policy.access" listed twice/,
    );
  });
});
