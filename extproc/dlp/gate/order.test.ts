// dlp.request in its place in the composition root, with the real engine (dlp.inspect): the data
// classes it finds in the body are what routing and policy rules judge, in the same request.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage } from '../../../test/harness/run-stage.ts';

const chat = (content: string) => ({
  path: '/v1/chat/completions',
  body: { model: 'm', messages: [{ role: 'user', content }] },
});
const dlp = {
  inspect: 'request',
  policies: [{ name: 'default', patterns: [{ name: 'MRN', regex: 'MRN-[0-9]{6}', dataClass: 'PHI', action: 'warn' }] }],
};

describe('dlp.request before routing and policy', () => {
  const routing = {
    routes: [
      { name: 'general', models: ['m'], dataClasses: ['pii'] },
      { name: 'hipaa', models: ['m'], dataClasses: ['pii', 'phi'] },
    ],
  };
  for (const [name, content, route] of [
    ['a prompt without PHI takes the first route that serves it', 'hello', 'general'],
    ['a PHI prompt goes only to the route that may receive PHI', 'patient MRN-123456', 'hipaa'],
  ] as const) {
    it(name, async () => {
      const r = await runStage({
        stages: ['llm.api_shape', 'dlp.request', 'routing.route'],
        config: { dlp, routing },
        request: chat(content),
      });
      expect(r.refused).toBeUndefined();
      expect(r.ctx.route?.name).toBe(route);
    });
  }

  it('a data class no route may receive is refused (no_eligible_route), nothing forwarded', async () => {
    const r = await runStage({
      stages: ['llm.api_shape', 'dlp.request', 'routing.route'],
      config: { dlp, routing: { routes: [{ name: 'general', models: ['m'], dataClasses: [] }] } },
      request: chat('write to jane@example.com'),
    });
    expect(r.refused).toMatchObject({ status: 403, code: 'no_eligible_route' });
  });

  it('a policy rule on data_classes sees what DLP found', async () => {
    const policy = {
      rules: [
        { id: 'no-phi-here', action: 'DENY', when: '"PHI" in data_classes' },
        { id: 'acme', action: 'ALLOW', from: { tenants: ['acme'] } },
      ],
    };
    const run = (content: string) =>
      runStage({
        stages: ['llm.api_shape', 'dlp.request', 'policy.rules'],
        config: { dlp, policy },
        given: { principal: jwtPrincipal({ tenant: 'acme' }) },
        request: chat(content),
      });
    expect((await run('patient MRN-123456')).refused).toMatchObject({
      code: 'policy_denied',
      ruleId: 'policy.rules.no-phi-here',
    });
    expect((await run('the weather')).refused).toBeUndefined();
  });
});
