// What the policy section refuses at load, each with the field and, for a condition, the rule and
// the position: a bad rule must never reach a request.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config/load.ts';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'test.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const rule = (fields: string) => `policy:\n  rules:\n    - { id: r1, action: DENY, ${fields} }\n`;

describe('policy config', () => {
  const table: [name: string, yaml: string, problem: string | RegExp][] = [
    [
      'a CEL syntax error, with the rule and its position',
      rule('when: "principal.tenant == "'),
      'policy.rules[0].when: rule "r1": Unexpected token: EOF at line 1, column 21',
    ],
    [
      'a CEL type error',
      rule('when: "request.max_tokens > \\"4096\\""'),
      'policy.rules[0].when: rule "r1": no such overload: int > string at line 1, column 1',
    ],
    [
      'a field the input does not have',
      rule('when: "principal.department == \\"x\\""'),
      'policy.rules[0].when: rule "r1": No such key: department at line 1, column 11',
    ],
    [
      'a variable the input does not have',
      rule('when: "user.admin"'),
      /^policy\.rules\[0\]\.when: rule "r1": Unknown variable: user at line 1, column 1$/,
    ],
    [
      'a regular expression (backtracking over client input)',
      rule('when: "principal.tenant == \\"a\\" || request.model.matches(\\"^(a+)+$\\")"'),
      /^policy\.rules\[0\]\.when: rule "r1": matches\(\) is not available: .* at line 1, column 28$/,
    ],
    [
      'a condition that is not a bool',
      rule('when: "request.max_tokens + 1"'),
      'policy.rules[0].when: rule "r1": a condition must be a bool expression, this one is int at line 1, column 1',
    ],
    [
      'a position on a later line',
      rule('when: "principal.tenant == \\"a\\" &&\\n  request.model =="'),
      'policy.rules[0].when: rule "r1": Unexpected token: EOF at line 2, column 19',
    ],
    [
      'an endpoint pattern that matches no endpoint',
      rule('to: { endpoints: [openai.chats] }'),
      'policy.rules[0].to.endpoints[0]: rule "r1": "openai.chats" matches none of openai.chat, openai.completions, openai.embeddings, openai.models, ollama.chat, ollama.generate, ollama.embed, ollama.tags, tgi.generate, tgi.generate_stream, unknown',
    ],
    [
      'a method that does not exist',
      rule('from: { methods: [oauth] }'),
      'policy.rules[0].from.methods[0]: rule "r1": "oauth" matches none of api_key, jwt, mtls',
    ],
    [
      'duplicate rule ids',
      'policy:\n  rules:\n    - { id: a, action: DENY }\n    - { id: a, action: ALLOW }\n',
      'policy.rules[1].id: duplicate rule id "a"',
    ],
    [
      'an unknown action',
      rule('action: PERMIT').replace('action: DENY, ', ''),
      'policy.rules[0].action: expected one of ALLOW, DENY',
    ],
    ['an unknown field in from', rule('from: { groups: [a] }'), 'policy.rules[0].from: unknown field(s) "groups"'],
    ['an empty pattern list', rule('from: { tenants: [] }'), /^policy\.rules\[0\]\.from\.tenants: /],
    ['an unknown time zone', 'policy: { timeZone: Mars/Olympus }', 'policy.timeZone: unknown time zone "Mars/Olympus"'],
    [
      'an OPA timeout the message deadline would cut',
      'policy: { opa: { url: "http://127.0.0.1:8181", path: lmgate/allow, timeoutMs: 150 } }',
      'policy.opa.timeoutMs: must be under server.messageDeadlineMs (150)',
    ],
    [
      'an OPA path that is not a data path',
      'policy: { opa: { url: "http://127.0.0.1:8181", path: /v1/data/x } }',
      /^policy\.opa\.path: a data path/,
    ],
    ['an OPA url that is not http', 'policy: { opa: { url: "file:///x", path: a } }', /^policy\.opa\.url: /],
    [
      'fail open is not an option',
      'policy: { opa: { url: "http://o", path: a, onError: allow } }',
      'policy.opa.onError: expected deny',
    ],
  ];
  for (const [name, yaml, problem] of table) {
    it(`refuses ${name}`, () => {
      const got = problems(yaml);
      if (typeof problem === 'string') expect(got).toContain(problem);
      else
        expect(
          got.some((p) => problem.test(p)),
          got.join('\n'),
        ).toBe(true);
    });
  }

  it('accepts the documented input and helpers', () => {
    expect(
      problems(
        rule(
          `when: 'principal.tenant == "acme" && "a" in principal.roles && principal.attributes["d"] == "x" && principal.method != "mtls" && principal.issuer != "" && principal.team != "" && principal.user != "" && principal.id != "" && request.endpoint == "openai.chat" && request.model != "" && !request.stream && request.max_tokens < 10 && request.path != "" && request.method == "POST" && !("PHI" in data_classes) && route.name != "" && route.labels["x"] == "y" && time.localHour() < 18 && time.localWeekday() > 0 && time.getFullYear() > 2000'`,
        ),
      ),
    ).toEqual([]);
  });
});
