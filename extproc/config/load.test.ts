import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashApiKey } from '../identity/api-keys.ts';
import { ConfigError, loadConfigFile, parseConfig, parseConfigFile } from './load.ts';

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
  it('an explicit {} gives every default', () => {
    const c = parseConfig('{}', 'defaults.yaml', {});
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
      // A union of an enum and "*": one list of everything either side allows.
      name: 'unknown endpoint name',
      yaml: `identity: { apiKeys: [ { id: a, tenant: t, sha256: ${H}, endpoints: [openai.chatt] } ] }`,
      expect:
        'identity.apiKeys[0].endpoints[0]: expected one of openai.chat, openai.completions, openai.embeddings, ' +
        'openai.models, ollama.chat, ollama.generate, ollama.embed, ollama.tags, tgi.generate, tgi.generate_stream, *',
    },
    {
      name: 'duplicate key ids',
      yaml: `identity: { apiKeys: [ { id: a, tenant: t, sha256: ${H} }, { id: a, tenant: t, sha256: ${hashApiKey('j')} } ] }`,
      expect: 'identity.apiKeys[1].id: duplicate key id "a"',
    },
    // YAML problems point at line:column the way compilers do, so editors can jump there.
    {
      name: 'YAML syntax',
      yaml: 'server:\n  grpcAddress: a: b\n',
      expect: 'test.yaml:2:16: Nested mappings are not allowed in compact mappings',
    },
    { name: 'unclosed flow sequence', yaml: 'server: [1, 2', expect: 'test.yaml:1:' },
    { name: 'not a mapping', yaml: '- 1\n- 2', expect: '(root): expected a mapping' },
    { name: 'a bare null document', yaml: '~', expect: '(root): expected a mapping' },
    { name: 'duplicate YAML keys', yaml: 'server: {}\nserver: {}', expect: 'test.yaml:2:1: Map keys must be unique' },
    // Enum problems list what is allowed, not zod's quoted "a"|"b" syntax.
    {
      name: 'unknown log level',
      yaml: 'logging: { level: loud }',
      expect: 'logging.level: expected one of fatal, error, warn, info, debug, trace, silent',
    },
    {
      name: 'unknown policy choice',
      yaml: 'policy: { unknownEndpoints: maybe }',
      expect: 'policy.unknownEndpoints: expected one of reject, allow',
    },
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

describe('config files', () => {
  // An empty file is a mistake far more often than a wish for every default (wrong path, a
  // truncated write, an editor's save caught half-way by the reload watcher): `{}` says that.
  for (const [name, text] of [
    ['empty', ''],
    ['only comments', '# lm-gate\n\n# nothing yet\n'],
    ['only whitespace', '\n   \n'],
  ] as const) {
    it(`a file that is ${name} is refused, saying how to ask for every default`, () => {
      expect(() => parseConfigFile(text, 'lm-gate.yaml', {})).toThrow(
        'lm-gate.yaml: invalid configuration\n  - the file is empty (or only comments); write {} to run on every default',
      );
    });
  }

  it('a file holding {} runs on every default', () => {
    expect(parseConfigFile('{}\n', 'lm-gate.yaml', {}).identity.apiKeys).toEqual([]);
  });

  it('a file that cannot be read is one line naming the file and why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lm-gate-load-'));
    try {
      await expect(loadConfigFile(join(dir, 'missing.yaml'), {})).rejects.toThrow(
        new RegExp(`^${dir}/missing.yaml: cannot read the file: no such file or directory \\(ENOENT\\)$`),
      );
      await expect(loadConfigFile(dir, {})).rejects.toThrow(/^\S+: cannot read the file: .*\(EISDIR\)$/);
      await writeFile(join(dir, 'empty.yaml'), '');
      await expect(loadConfigFile(join(dir, 'empty.yaml'), {})).rejects.toThrow('the file is empty');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
