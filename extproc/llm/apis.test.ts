import { describe, expect, it } from 'vitest';
import { endpointNames } from '../config/schema.ts';
import { API_KINDS, API_SPECS, type ApiSpec, apiSpec } from './apis.ts';
import { classifyPath, needsBody } from './shapes.ts';

describe('the API table', () => {
  for (const spec of API_SPECS) {
    it(`${spec.kind}: every path it lists is classified as it, also with a trailing slash and a query`, () => {
      for (const path of spec.paths) {
        expect(classifyPath(spec.method, path)).toBe(spec.kind);
        expect(classifyPath(spec.method, `${path}/?x=1`)).toBe(spec.kind);
      }
      expect(needsBody(spec.kind)).toBe(spec.body);
    });
  }

  it('a model id after /v1/models/ may contain slashes', () => {
    expect(classifyPath('GET', '/v1/models/meta-llama/Llama-3.1-8B-Instruct')).toBe('openai.models');
  });

  it("the config's endpoint names are the table's kinds", () => {
    expect(endpointNames).toEqual(API_KINDS);
  });

  it('only an API that streams frames a stream, and the gate asks for usage only where the API lets it', () => {
    for (const s of API_SPECS) {
      expect(s.streams === 'never').toBe(s.streamFormat === undefined);
      if (s.usageOnRequest) expect([s.family, s.streams]).toEqual(['openai', 'opt_in']);
    }
    expect(apiSpec('unknown')).toBeUndefined();
  });

  it('a stream flag read on some paths only names paths of its own, of an API that opts in', () => {
    for (const s of API_SPECS as readonly ApiSpec[]) {
      if (s.streamFlagPaths === undefined) continue;
      expect(s.streams).toBe('opt_in');
      for (const p of s.streamFlagPaths) expect(s.paths).toContain(p);
    }
  });
});
