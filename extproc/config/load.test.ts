import { describe, expect, it } from 'vitest';
import { hashApiKey } from '../identity/api-keys.ts';
import { ConfigError, parseConfig } from './load.ts';

const H = hashApiKey('k');

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(yaml, 'test.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('parseConfig', () => {
  it('an empty file gives every default', () => {
    const c = parseConfig('', 'empty.yaml', {});
    expect(c.server).toMatchObject({
      grpcAddress: '127.0.0.1:50051',
      messageDeadlineMs: 150,
      maxRequestBodyBytes: 4194304,
    });
    expect(c.identity.apiKeys).toEqual([]);
    expect(c.policy.unknownEndpoints).toBe('reject');
    expect(c.metering.injectStreamUsage).toBe(true);
  });

  it('fills key defaults', () => {
    const c = parseConfig(`identity:\n  apiKeys:\n    - { id: a, sha256: ${H}, tenant: t }\n`, 'x', {});
    expect(c.identity.apiKeys[0]).toMatchObject({ models: ['*'], endpoints: ['*'], roles: [], disabled: false });
  });

  const table: { name: string; yaml: string; expect: string; env?: NodeJS.ProcessEnv }[] = [
    {
      name: 'bad address',
      yaml: 'server: { grpcAddress: localhost }',
      expect: 'server.grpcAddress: expected host:port',
    },
    {
      name: 'port out of range',
      yaml: 'server: { adminAddress: "127.0.0.1:99999" }',
      expect: 'server.adminAddress: port must be between 0 and 65535',
    },
    { name: 'unknown top-level field', yaml: 'servr: {}', expect: '(root): unknown field(s) "servr"' },
    { name: 'unknown nested field', yaml: 'server: { port: 1 }', expect: 'server: unknown field(s) "port"' },
    { name: 'negative number', yaml: 'audit: { maxPendingBytes: -1 }', expect: 'audit.maxPendingBytes' },
    {
      name: 'key without hash',
      yaml: 'identity: { apiKeys: [ { id: a, tenant: t } ] }',
      expect: 'identity.apiKeys[0].sha256',
    },
    {
      name: 'hash not hex',
      yaml: 'identity: { apiKeys: [ { id: a, tenant: t, sha256: abc } ] }',
      expect: 'identity.apiKeys[0].sha256: expected the lowercase hex SHA-256',
    },
    {
      name: 'unknown endpoint name',
      yaml: `identity: { apiKeys: [ { id: a, tenant: t, sha256: ${H}, endpoints: [openai.chatt] } ] }`,
      expect: 'identity.apiKeys[0].endpoints[0]',
    },
    {
      name: 'duplicate key ids',
      yaml: `identity: { apiKeys: [ { id: a, tenant: t, sha256: ${H} }, { id: a, tenant: t, sha256: ${hashApiKey('j')} } ] }`,
      expect: 'identity.apiKeys[1].id: duplicate key id "a"',
    },
    { name: 'YAML syntax', yaml: 'server: [1, 2', expect: 'YAML' },
    { name: 'not a mapping', yaml: '- 1\n- 2', expect: '(root): expected a mapping' },
    { name: 'duplicate YAML keys', yaml: 'server: {}\nserver: {}', expect: 'YAML' },
    {
      name: 'unset env var',
      yaml: 'audit: { path: "${AUDIT_DIR}/a.log" }',
      expect: 'audit.path: environment variable AUDIT_DIR is not set',
    },
  ];
  for (const t of table) {
    it(`rejects ${t.name}`, () => {
      const p = problems(t.yaml, t.env);
      expect(p.join('\n')).toContain(t.expect);
    });
  }

  it('interpolates ${ENV}, ${ENV:-default} and keeps $${literal}', () => {
    const c = parseConfig('audit: { path: "${DIR}/a-${NAME:-x}-$${HOME}.log" }', 'x', { DIR: '/var/log' });
    expect(c.audit.path).toBe('/var/log/a-x-${HOME}.log');
  });

  it('an env value cannot inject YAML structure', () => {
    const c = parseConfig('audit: { path: "${P}" }', 'x', { P: 'a\nserver: { grpcAddress: evil }' });
    expect(c.audit.path).toBe('a\nserver: { grpcAddress: evil }');
    expect(c.server.grpcAddress).toBe('127.0.0.1:50051');
  });

  it('the error message names the file', () => {
    expect(() => parseConfig('servr: 1', 'lm-gate.yaml', {})).toThrow(/^lm-gate.yaml: invalid configuration/);
  });
});
