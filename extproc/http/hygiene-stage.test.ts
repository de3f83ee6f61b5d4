// http.hygiene decision table: it runs in every pipeline, also the pass-through one.
import { describe, expect, it } from 'vitest';
import { runStage } from '../../test/harness/run-stage.ts';

describe('http.hygiene', () => {
  const rows: { name: string; headers: Record<string, string>; removed: string[] }[] = [
    {
      name: 'a spoofed x-lmgate-tenant is removed',
      headers: { 'x-lmgate-tenant': 'evil' },
      removed: ['x-lmgate-tenant'],
    },
    {
      name: 'the underscore spelling, which some servers fold into the same name, is removed too',
      headers: { x_lmgate_tenant: 'evil' },
      removed: ['x_lmgate_tenant'],
    },
    { name: 'other headers pass untouched', headers: { 'x-lmgate': 'not ours', 'x-tenant': 'a' }, removed: [] },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const run = await runStage({ stages: [], request: { path: '/v1/models', headers: row.headers } });
      expect(run.upstream?.removed).toEqual(row.removed);
      for (const name of row.removed) expect(run.ctx.headers.has(name)).toBe(false);
      // Envoy may have picked a route with the spoofed header (x-lmgate-route): it must pick again.
      expect(run.answers[0]?.requestHeaders?.response?.clearRouteCache === true).toBe(row.removed.length > 0);
    });
  }

  it("an upstream's x-lmgate-* never reaches the client", async () => {
    const run = await runStage({
      stages: [],
      request: { path: '/v1/models' },
      response: { headers: { 'x-lmgate-debug': 'internal', 'x-model-server': 'vllm' } },
    });
    expect(run.client?.removed).toEqual(['x-lmgate-debug']);
  });
});
