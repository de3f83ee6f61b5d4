// The evaluator's phases: what it decides with only the request headers' facts, and what it
// leaves for the body. The stage table (rules-stage.test.ts) shows the same through the gate.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal } from '../../test/harness/run-stage.ts';
import { configSchema } from '../config/schema.ts';
import { celEnvironment, compileCondition } from './cel.ts';
import { NO_RULES, PENDING, PolicyEngine } from './engine.ts';
import type { PolicyInput } from './input.ts';
import { zoneClock } from './zone-clock.ts';

const engine = (policy: Record<string, unknown>) => new PolicyEngine(configSchema.parse({ policy }));

function input(endpoint: string, over: Partial<PolicyInput['request']> = {}): PolicyInput {
  return {
    principal: jwtPrincipal(),
    request: {
      endpoint,
      model: undefined,
      stream: false,
      maxTokens: undefined,
      path: '/v1/chat/completions',
      method: 'POST',
      ...over,
    },
    dataClasses: new Set(),
    route: undefined,
    nowMs: 0,
  };
}

const summary = (r: ReturnType<PolicyEngine['decideAtHeaders']>) =>
  r === PENDING || r === NO_RULES ? r : `${r.effect} ${r.ruleId}`;

describe('PolicyEngine.decideAtHeaders', () => {
  const table: [name: string, policy: Record<string, unknown>, endpoint: string, bodyFollows: boolean, want: string][] =
    [
      [
        'header-only ALLOW, no DENY that reads the body: admitted at headers',
        { rules: [{ id: 'a', action: 'ALLOW', from: { tenants: ['acme'] } }] },
        'openai.chat',
        true,
        'allow policy.rules.a',
      ],
      [
        'a DENY rule that reads the model keeps the decision for the body',
        {
          rules: [
            { id: 'd', action: 'DENY', to: { models: ['x'] } },
            { id: 'a', action: 'ALLOW' },
          ],
        },
        'openai.chat',
        true,
        PENDING,
      ],
      [
        'unless it cannot match whoever calls: its header part fails',
        {
          rules: [
            { id: 'd', action: 'DENY', from: { tenants: ['globex'] }, to: { models: ['x'] } },
            { id: 'a', action: 'ALLOW' },
          ],
        },
        'openai.chat',
        true,
        'allow policy.rules.a',
      ],
      [
        'a DENY indexed under other endpoints is not even tried',
        {
          rules: [
            { id: 'd', action: 'DENY', to: { endpoints: ['openai.embeddings'], models: ['x'] } },
            { id: 'a', action: 'ALLOW' },
          ],
        },
        'openai.chat',
        true,
        'allow policy.rules.a',
      ],
      [
        'a condition on the model reads the body',
        {
          rules: [
            { id: 'd', action: 'DENY', when: 'request.model == "x"' },
            { id: 'a', action: 'ALLOW' },
          ],
        },
        'openai.chat',
        true,
        PENDING,
      ],
      [
        'a condition on the endpoint and the caller does not',
        {
          rules: [
            { id: 'd', action: 'DENY', when: 'request.endpoint == "openai.embeddings" && principal.tenant == "acme"' },
            { id: 'a', action: 'ALLOW' },
          ],
        },
        'openai.chat',
        true,
        'allow policy.rules.a',
      ],
      [
        'only an ALLOW that reads the body could admit: wait',
        { rules: [{ id: 'a', action: 'ALLOW', to: { models: ['m'] } }] },
        'openai.chat',
        true,
        PENDING,
      ],
      [
        'no ALLOW can match: denied at headers, whatever the body',
        {
          rules: [
            { id: 'd', action: 'DENY', to: { models: ['x'] } },
            { id: 'a', action: 'ALLOW', from: { tenants: ['globex'] } },
          ],
        },
        'openai.chat',
        true,
        'deny policy.default',
      ],
      [
        'tenant isolation reads the model',
        { rules: [{ id: 'a', action: 'ALLOW' }], tenantModels: { globex: ['g-*'] } },
        'openai.chat',
        true,
        PENDING,
      ],
      [
        'isolation alone, no body: admitted',
        { tenantModels: { globex: ['g-*'] } },
        'openai.models',
        false,
        'allow policy.tenantIsolation',
      ],
      [
        'OPA alone: the local policy has no say',
        { opa: { url: 'http://127.0.0.1:1', path: 'p' } },
        'openai.chat',
        true,
        NO_RULES,
      ],
      [
        'no body follows: final at headers, a rule on the model simply does not match',
        { rules: [{ id: 'a', action: 'ALLOW', to: { models: ['*'] } }] },
        'openai.models',
        false,
        'deny policy.default',
      ],
    ];
  for (const [name, policy, endpoint, bodyFollows, want] of table) {
    it(name, () => {
      expect(summary(engine(policy).decideAtHeaders(input(endpoint), bodyFollows))).toBe(want);
    });
  }

  it('what was pending decides with the body in, by the same tests', () => {
    const e = engine({
      rules: [
        { id: 'd', action: 'DENY', to: { models: ['x'] } },
        { id: 'a', action: 'ALLOW' },
      ],
    });
    expect(summary(e.decideFinal(input('openai.chat', { model: 'x' })))).toBe('deny policy.rules.d');
    expect(summary(e.decideFinal(input('openai.chat', { model: 'y' })))).toBe('allow policy.rules.a');
  });
});

describe('compileCondition: what it reads', () => {
  const env = celEnvironment('UTC');
  const table: [string, boolean][] = [
    ['principal.tenant == "a" && "r" in principal.roles', false],
    ['request.endpoint == "openai.chat" && request.path != "" && request.method == "POST"', false],
    ['time.localHour() < 8', false],
    ['request.model == "m"', true],
    ['request.stream', true],
    ['request.max_tokens > 1', true],
    ['has(request.model)', true],
    ['"PHI" in data_classes', true],
    ['route.name == "r"', true],
    // A macro variable named like the input is counted as a body read: deciding later is safe.
    ['[1].exists(request, request > 0)', true],
  ];
  for (const [source, body] of table)
    it(`${source}: ${body ? 'the body' : 'headers only'}`, () => {
      expect(compileCondition(env, source).readsBody).toBe(body);
    });
});

describe('zoneClock', () => {
  const table: [zone: string, iso: string, hour: number, weekday: number][] = [
    ['UTC', '2026-03-04T21:30:00Z', 21, 3],
    ['Europe/Berlin', '2026-03-04T23:30:00Z', 0, 4],
    ['America/New_York', '2026-03-05T03:59:00Z', 22, 3],
    // Daylight saving starts in Berlin at 01:00 UTC on 29 March 2026.
    ['Europe/Berlin', '2026-03-29T00:59:00Z', 1, 0],
    ['Europe/Berlin', '2026-03-29T01:00:00Z', 3, 0],
    ['Asia/Kolkata', '2026-03-04T18:29:00Z', 23, 3],
    ['Asia/Kolkata', '2026-03-04T18:30:00Z', 0, 4],
  ];
  for (const [zone, iso, hour, weekday] of table)
    it(`${iso} in ${zone} is hour ${hour}, weekday ${weekday}`, () => {
      const c = zoneClock(zone);
      expect([c.hour(Date.parse(iso)), c.weekday(Date.parse(iso))]).toEqual([hour, weekday]);
    });

  it('agrees with Intl over a year of hours, transitions included', () => {
    const c = zoneClock('Europe/Berlin');
    const intl = new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', hourCycle: 'h23', hour: 'numeric' });
    for (let ms = Date.parse('2026-01-01T00:07:00Z'); ms < Date.parse('2027-01-01T00:00:00Z'); ms += 3_600_000)
      expect(c.hour(ms)).toBe(Number(intl.format(ms)));
  });
});
