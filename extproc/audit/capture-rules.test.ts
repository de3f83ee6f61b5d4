// audit.capture.rules: one row per rule shape and edge (first match wins, a fact the request lacks
// matches no pattern, a rule that keeps nothing still ends the search).
import { describe, expect, it } from 'vitest';
import { jwtPrincipal } from '../../test/harness/run-stage.ts';
import { captureConfig } from './capture-config.ts';
import { type CaptureFacts, compileCaptureRules } from './capture-rules.ts';

const RULES = captureConfig.parse({
  rules: [
    { id: 'no-hr', from: { teams: ['hr'] }, prompt: false, response: false },
    { id: 'claims', from: { tenants: ['acme'], roles: ['analyst', 'lead-*'] }, maxChars: 100 },
    { id: 'eu-route', to: { routes: ['eu-*'] }, response: false },
    { id: 'big-models', from: { methods: ['api_key'] }, to: { models: ['gpt-4*'], endpoints: ['openai.chat'] } },
  ],
}).rules;
const match = compileCaptureRules(RULES)!;

const facts = (over: Partial<CaptureFacts> = {}): CaptureFacts => ({
  principal: jwtPrincipal({ tenant: 'globex', team: 'ops', roles: [] }),
  endpoint: 'openai.chat',
  model: 'llama-3',
  route: undefined,
  ...over,
});

const rows: { name: string; facts: CaptureFacts; rule: string | undefined }[] = [
  { name: 'a caller no rule is about is not captured', facts: facts(), rule: undefined },
  {
    name: 'a tenant with a matching role is captured by its rule',
    facts: facts({ principal: jwtPrincipal({ tenant: 'acme', team: 'claims', roles: ['analyst'] }) }),
    rule: 'claims',
  },
  {
    name: 'a role pattern with a wildcard matches',
    facts: facts({ principal: jwtPrincipal({ tenant: 'acme', team: 'claims', roles: ['x', 'lead-eu'] }) }),
    rule: 'claims',
  },
  {
    name: 'the tenant without the role does not match',
    facts: facts({ principal: jwtPrincipal({ tenant: 'acme', team: 'claims', roles: ['intern'] }) }),
    rule: undefined,
  },
  {
    name: 'the first rule wins: an hr caller of acme is not captured, even with a capturing rule after it',
    facts: facts({ principal: jwtPrincipal({ tenant: 'acme', team: 'hr', roles: ['analyst'] }) }),
    rule: 'no-hr',
  },
  {
    name: 'a caller without a team matches no teams pattern',
    facts: facts({ principal: jwtPrincipal({ tenant: 'globex', team: undefined, roles: [] }), route: 'eu-west' }),
    rule: 'eu-route',
  },
  { name: 'a route pattern matches the chosen route', facts: facts({ route: 'eu-west' }), rule: 'eu-route' },
  { name: 'no route matches no routes pattern', facts: facts({ route: undefined }), rule: undefined },
  {
    name: 'models, endpoints and methods must all match',
    facts: facts({ principal: jwtPrincipal({ method: 'api_key', team: 'ops', roles: [] }), model: 'gpt-4o' }),
    rule: 'big-models',
  },
  {
    name: 'the same caller and model on another endpoint does not match',
    facts: facts({
      principal: jwtPrincipal({ method: 'api_key', team: 'ops', roles: [] }),
      model: 'gpt-4o',
      endpoint: 'openai.completions',
    }),
    rule: undefined,
  },
  { name: 'no caller at all matches no from pattern', facts: facts({ principal: undefined }), rule: undefined },
];

describe('audit.capture rules', () => {
  for (const row of rows) it(row.name, () => expect(match(row.facts)?.rule).toBe(row.rule));

  it('a rule keeps both directions up to 16384 characters unless it says otherwise', () => {
    expect(match(facts({ route: 'eu-1' }))).toEqual({
      rule: 'eu-route',
      prompt: true,
      response: false,
      maxChars: 16384,
    });
    expect(match(facts({ principal: jwtPrincipal({ tenant: 'acme', roles: ['analyst'] }) }))?.maxChars).toBe(100);
  });

  it('refuses a config with a duplicate rule id or an endpoint pattern that matches no endpoint', () => {
    const issues = captureConfig
      .safeParse({
        rules: [{ id: 'a' }, { id: 'a', to: { endpoints: ['openai.chatt'] }, from: { methods: ['apikey'] } }],
      })
      .error?.issues.map((i) => i.message);
    expect(issues).toEqual([
      'duplicate capture rule id "a"',
      expect.stringContaining('capture rule "a": "openai.chatt" matches none of openai.chat'),
      expect.stringContaining('capture rule "a": "apikey" matches none of api_key'),
    ]);
  });

  it('no rules: no matcher, so the stage has no hook', () => {
    expect(compileCaptureRules([])).toBeUndefined();
    expect(captureConfig.parse({}).rules).toEqual([]);
  });
});
