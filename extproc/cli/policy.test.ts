// `lm-gate policy explain` and `lm-gate policy test` as a user meets them: the real CLI in a
// child process, over the shipped example config and its table, and over tables with a wrong
// expectation or a mistake.

import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/harness/cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const cli = (args: string[]) => runCli(args);
const CONFIG = join(ROOT, 'examples', 'lm-gate.yaml');
const TABLE = join(ROOT, 'examples', 'policy-test.yaml');
const dir = mkdtempSync(join(tmpdir(), 'lm-gate-policy-cli-'));

afterAll(() => rm(dir, { recursive: true, force: true }));

const TIMEOUT = 30_000;

describe('lm-gate policy test', () => {
  it(
    'passes the shipped table, exit 0 with a summary',
    async () => {
      const r = await cli(['policy', 'test', '-c', CONFIG, TABLE]);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toMatch(/policy-test\.yaml: 18 cases, all passed$/);
      expect(r.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'fails on a wrong expectation, exit 1, saying which row, what was expected and why it went otherwise',
    async () => {
      const table = join(dir, 'wrong.yaml');
      await writeFile(
        table,
        `cases:
  - name: right
    key_id: research-notebooks
    request: {endpoint: openai.chat, model: llama-3.1-8b, max_tokens: 512}
    expect: allow
  - name: the reviewer thought interns could ask for long generations
    principal: {id: ivy, tenant: acme, team: research, roles: [intern]}
    request: {endpoint: openai.chat, model: llama-3.1-8b, max_tokens: 9000}
    expect: allow
  - name: right effect, wrong rule
    principal: {id: gus, tenant: globex, roles: [compliance-officer], issuer: 'https://idp.acme.example'}
    request: {endpoint: openai.chat, model: acme-regulatory-7b, time: '2026-03-04T10:00:00+01:00'}
    expect: deny
    rule: policy.default
`,
      );
      const r = await cli(['policy', 'test', '-c', CONFIG, table]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(
        'FAIL  the reviewer thought interns could ask for long generations: expected allow, got deny by policy.rules.no-long-generations',
      );
      // The explanation follows: the rule that decided is marked.
      expect(r.stdout).toMatch(/=> +DENY +policy\.rules\.no-long-generations +match/);
      expect(r.stdout).toContain(
        'FAIL  right effect, wrong rule: expected deny by policy.default, got deny by policy.tenantIsolation.acme',
      );
      expect(r.stdout).not.toContain('FAIL  right:');
      expect(r.stdout.trim().split('\n').at(-1)).toBe(`${table}: 3 cases, 2 failed, 1 passed`);
    },
    TIMEOUT,
  );

  it(
    'a table it cannot run: exit 1, one line per problem, no stack',
    async () => {
      const noCaller = join(dir, 'no-caller.yaml');
      await writeFile(
        noCaller,
        'cases:\n  - {name: no caller, request: {endpoint: openai.chat, model: m}, expect: allow}\n',
      );
      const r = await cli(['policy', 'test', '-c', CONFIG, noCaller]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([
        `${noCaller}: cases[0]: give the caller as principal or as key_id (one of them)`,
      ]);
      const table = join(dir, 'bad.yaml');
      await writeFile(
        table,
        `cases:
  - name: a key the config lacks
    key_id: nobody
    request: {endpoint: openai.chat, model: m}
    expect: deny
  - name: a chat without a model
    principal: {id: a, tenant: acme}
    request: {endpoint: openai.chat}
    expect: deny
`,
      );
      const r2 = await cli(['policy', 'test', '-c', CONFIG, table]);
      expect(r2.code).toBe(1);
      expect(r2.stderr.trim().split('\n')).toEqual([
        `${table}: cases[0] (a key the config lacks): no API key "nobody" in identity.apiKeys`,
        `${table}: cases[1] (a chat without a model): request: openai.chat calls name a model (the gate refuses one without, 400)`,
      ]);
      expect(r2.stderr).not.toMatch(/^\s+at /m);
    },
    TIMEOUT,
  );

  it(
    'usage mistakes: one line, exit 2',
    async () => {
      const r = await cli(['policy', 'test', TABLE]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        'lm-gate policy test: -c FILE is required; usage: lm-gate policy test -c FILE [-v] TABLE',
      );
      const r2 = await cli(['policy', 'frobnicate']);
      expect(r2.code).toBe(2);
      expect(r2.stderr.trim()).toMatch(/^lm-gate policy: expected "policy explain" or "policy test"/);
    },
    TIMEOUT,
  );
});

describe('lm-gate policy explain', () => {
  it(
    'judges a generating request that sets no max_tokens at policy.defaultMaxTokens, as the gate writes it',
    async () => {
      const config = join(dir, 'default-max-tokens.yaml');
      await writeFile(
        config,
        `policy:
  defaultMaxTokens: 1024
  rules:
    - {id: cap, action: DENY, when: 'request.max_tokens > 4096'}
    - {id: all, action: ALLOW}
`,
      );
      const ask = (request: string) =>
        cli(['policy', 'explain', '-c', config, '--principal', '{"id":"a","tenant":"t"}', '--request', request]);
      const chat = await ask('{"endpoint":"openai.chat","model":"m"}');
      expect(chat.stdout.split('\n')[0]).toContain('max_tokens=1024');
      expect(chat.stdout).toMatch(/=> +ALLOW +policy\.rules\.all/);
      const ollama = await ask('{"endpoint":"ollama.chat","model":"l","max_tokens":-1}');
      expect(ollama.stdout.split('\n')[0]).toContain('max_tokens=1024');
      const asked = await ask('{"endpoint":"openai.chat","model":"m","max_tokens":9000}');
      expect(asked.stdout).toMatch(/=> +DENY +policy\.rules\.cap/);
    },
    TIMEOUT,
  );

  it(
    'lists every rule considered, what did not match, and which decided',
    async () => {
      const r = await cli([
        'policy',
        'explain',
        '-c',
        CONFIG,
        '--principal',
        '{"id":"gus","tenant":"globex","roles":["compliance-officer"],"issuer":"https://idp.acme.example"}',
        '--request',
        '{"endpoint":"openai.chat","model":"acme-regulatory-7b","max_tokens":512,"time":"2026-03-04T10:00:00+01:00"}',
      ]);
      expect(r.code).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines[0]).toBe(
        'request    POST /v1/chat/completions (openai.chat) model=acme-regulatory-7b stream=false max_tokens=512 route=regulatory',
      );
      expect(lines[1]).toBe(
        'principal  id=gus tenant=globex roles=[compliance-officer] method=jwt issuer=https://idp.acme.example',
      );
      const rows = lines.filter((l) => /^(=>| {2}) /.test(l)).map((l) => l.split(/ {2,}/).map((c) => c.trim()));
      expect(rows).toEqual([
        ['', 'route', 'routing.routes.regulatory', 'allow', 'route regulatory'],
        ['', 'scope', 'policy.access', 'allow', 'the credential carries no scope'],
        ['=>', 'isolation', 'policy.tenantIsolation.acme', 'match', 'acme owns acme-regulatory-7b'],
        ['', 'DENY', 'policy.rules.no-long-generations', 'no match', 'when is false'],
        ['', 'DENY', 'policy.rules.phi-stays-in-hipaa', 'no match', 'when is false'],
        ['', 'ALLOW', 'policy.rules.acme-lists-models', 'no match', 'to.endpoints does not match "openai.chat"'],
        ['', 'ALLOW', 'policy.rules.research-llama', 'no match', 'from.teams does not match null'],
        ['', 'ALLOW', 'policy.rules.indexers-embed', 'no match', 'to.endpoints does not match "openai.chat"'],
        ['', 'ALLOW', 'policy.rules.compliance-regulatory-model', 'match', 'every part matched'],
        ['', 'default', 'policy.default', '-', 'an earlier step decided'],
      ]);
      expect(lines.at(-2)).toBe(
        'decision: deny by policy.tenantIsolation.acme at request body: model owned by tenant acme (policy_denied)',
      );
    },
    TIMEOUT,
  );

  it(
    'by API key id, as JSON',
    async () => {
      const r = await cli([
        'policy',
        'explain',
        '-c',
        CONFIG,
        '--key-id',
        'research-notebooks',
        '--request',
        '{"endpoint":"openai.embeddings","model":"nomic-embed-text"}',
        '--json',
      ]);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({
        effect: 'deny',
        rule_id: 'identity.apiKeys.research-notebooks.endpoints',
        decided_at: 'request headers',
      });
      expect(out.steps.length).toBeGreaterThan(5);
    },
    TIMEOUT,
  );

  it(
    'usage mistakes: one line, exit 2',
    async () => {
      const table: [string[], string][] = [
        [
          ['policy', 'explain', '-c', CONFIG, '--request', '{}'],
          'lm-gate policy explain: give the caller with --principal or --key-id (one of them); usage: lm-gate policy explain -c FILE (--principal JSON | --key-id ID) --request JSON [--json]',
        ],
        [
          ['policy', 'explain', '-c', CONFIG, '--key-id', 'research-notebooks', '--request', '{model'],
          'lm-gate policy explain: --request is not JSON; usage: lm-gate policy explain -c FILE (--principal JSON | --key-id ID) --request JSON [--json]',
        ],
        [
          [
            'policy',
            'explain',
            '-c',
            CONFIG,
            '--key-id',
            'research-notebooks',
            '--request',
            '{"endpoint":"openai.models","model":"m"}',
          ],
          'lm-gate policy explain: request: GET /v1/models has no body, so no model, stream, max_tokens, data_classes or route',
        ],
      ];
      for (const [args, line] of table) {
        const r = await cli(args);
        expect(r.code).toBe(2);
        expect(r.stderr.trim()).toBe(line);
      }
    },
    TIMEOUT,
  );

  it(
    'a config it cannot load: exit 1',
    async () => {
      const bad = join(dir, 'bad-config.yaml');
      await writeFile(bad, 'policy:\n  rules:\n    - { id: r, action: DENY, when: "principal.tenant ==" }\n');
      const r = await cli([
        'policy',
        'explain',
        '-c',
        bad,
        '--principal',
        '{"id":"a","tenant":"t"}',
        '--request',
        '{"endpoint":"openai.models"}',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('policy.rules[0].when: rule "r": Unexpected token: EOF at line 1, column 20');
      expect(r.stderr).not.toMatch(/^\s+at /m);
    },
    TIMEOUT,
  );
});
