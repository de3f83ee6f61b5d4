// The CLI as a user meets it: `node bin/lm-gate.js ...` in a child process. Every mistake a
// user can make is answered on stderr in one line (a config file with several problems: one
// header line and one line per problem), never with a stack trace, and with the exit code
// scripts can rely on: 2 for a wrong command line, 1 for a bad config or a failed start.

import { mkdtempSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CliRun, runCli } from '../test/harness/cli.ts';

// Each test starts Node on the TypeScript sources, several at once (it.concurrent): on a loaded
// 2-core machine one start took over the unit project's default 5 s. A hung CLI is still caught,
// by runCli's own limit, well before this.
vi.setConfig({ testTimeout: 45_000 });
const cli = (args: string[], timeoutMs = 30_000) => runCli(args, timeoutMs);

type Run = CliRun;

/** Lines of stderr that are not the gate's own JSON log lines. */
function messageLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}

function expectNoStack(r: Run): void {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/TypeError|\bError:/);
}

// Made while the file is collected: the tables below name files in it.
const dir = mkdtempSync(join(tmpdir(), 'lm-gate-cli-'));
let busy: Server;
let busyPort: number;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  const audit = join(dir, 'audit.log');
  const files: Record<string, string> = {
    'empty.yaml': '',
    'comments.yaml': '# to be written\n',
    'enum.yaml': 'logging:\n  level: loud\n',
    'syntax.yaml': 'server:\n  grpcAddress: a: b\n',
    'port.yaml': 'server:\n  adminAddress: 127.0.0.1:99999\n',
    'two-problems.yaml': 'server:\n  grpcAddress: nope\nlogging:\n  level: loud\n',
    'keys-ok.yaml': `keys:\n  - { id: a, sha256: ${'a'.repeat(64)}, tenant: t }\n`,
    'keys-bad.yaml': `keys:\n  - { id: a, sha256: ${'a'.repeat(64)}, tenant: t, expiresAt: soon }\n`,
    'keys-locked.yaml': `keys:\n  - { id: a, sha256: ${'a'.repeat(64)}, tenant: t }\n`,
    'keys-locked.yaml.lock': '4242\n',
    'keys-missing.yaml': 'identity:\n  keysFile: no-such-keys.yaml\n',
    'keys-dup.yaml': `identity:\n  keysFile: keys-ok.yaml\n  apiKeys: [{ id: a, sha256: ${'b'.repeat(64)}, tenant: t }]\n`,
    'keys-joined.yaml': `identity:\n  keysFile: keys-ok.yaml\n  apiKeys: [{ id: b, sha256: ${'b'.repeat(64)}, tenant: t }]\n`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(file(name), text);
  await mkdir(file('a-directory.yaml'));

  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as { port: number }).port;
  const serveConfig = (server: string) => `server:\n${server}audit:\n  path: ${audit}\n`;
  await writeFile(
    file('grpc-busy.yaml'),
    serveConfig(`  grpcAddress: 127.0.0.1:${busyPort}\n  adminAddress: 127.0.0.1:0\n`),
  );
  await writeFile(
    file('admin-busy.yaml'),
    serveConfig(`  grpcAddress: 127.0.0.1:0\n  adminAddress: 127.0.0.1:${busyPort}\n`),
  );
  // 192.0.2.0/24 is TEST-NET-1: no interface of a test machine has it.
  await writeFile(file('not-here.yaml'), serveConfig('  grpcAddress: 192.0.2.1:50051\n  adminAddress: 127.0.0.1:0\n'));
  await writeFile(
    file('socket-dir-missing.yaml'),
    serveConfig(
      `  grpcAddress: 127.0.0.1:0\n  unixSocket: ${join(dir, 'no-such-dir', 'gate.sock')}\n  adminAddress: 127.0.0.1:0\n`,
    ),
  );
});

afterAll(async () => {
  busy?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a wrong command line: one line, exit 2', () => {
  const table: { args: () => string[]; says: RegExp }[] = [
    {
      args: () => ['serve', '--bogus'],
      says: /^lm-gate serve: unknown option '--bogus'; usage: lm-gate serve -c FILE$/,
    },
    { args: () => ['serve', '-c'], says: /^lm-gate serve: option '-c, --config <value>' argument missing; usage: / },
    { args: () => ['serve'], says: /^lm-gate serve: -c FILE is required; usage: lm-gate serve -c FILE$/ },
    { args: () => ['serve', '-c', 'a.yaml', 'extra'], says: /^lm-gate serve: unexpected argument 'extra'; usage: / },
    { args: () => ['frobnicate'], says: /^lm-gate: unknown command "frobnicate"; commands: serve, check-config, keys/ },
    { args: () => ['--bogus'], says: /^lm-gate: unknown command "--bogus"/ },
    {
      args: () => ['check-config'],
      says: /^lm-gate check-config: FILE is required; usage: lm-gate check-config FILE$/,
    },
    { args: () => ['check-config', 'a.yaml', 'b.yaml'], says: /^lm-gate check-config: one FILE only; usage: / },
    { args: () => ['check-config', '--strict', 'a.yaml'], says: /^lm-gate check-config: unknown option '--strict'/ },
    {
      args: () => ['keys'],
      says: /^lm-gate keys: expected one of create, list, revoke, rotate; usage: lm-gate keys create\|list\|revoke\|rotate /,
    },
    { args: () => ['keys', 'delete'], says: /^lm-gate keys: unknown subcommand "delete"; expected one of create, / },
    { args: () => ['keys', 'create', '--nope'], says: /^lm-gate keys create: unknown option '--nope'; usage: / },
    { args: () => ['keys', 'create', '--id'], says: /^lm-gate keys create: option '--id <value>' argument missing/ },
    {
      args: () => ['keys', 'create', '--file', file('k.yaml'), '--tenant', 't'],
      says: /^lm-gate keys create: --id is required with --file; usage: /,
    },
    {
      args: () => ['keys', 'create', '--file', file('k.yaml'), '--id', 'a'],
      says: /^lm-gate keys create: --tenant is required with --file; usage: /,
    },
    {
      args: () => ['keys', 'create', '--id', 'a b'],
      says: /^lm-gate keys create: --id: key ids are 1-64 characters of A-Z a-z 0-9 \. _ -, not "a b"; usage: /,
    },
    {
      args: () => ['keys', 'create', '--id', 'a', '--endpoints', 'openai.chat,openai.chatt'],
      says: /^lm-gate keys create: --endpoints: "openai.chatt": expected one of openai\.chat, .*, \*; usage: /,
    },
    {
      args: () => ['keys', 'create', '--id', 'a', '--expires', 'soon'],
      says: /^lm-gate keys create: --expires: "soon" is neither a duration \(90d, 12h, 30m, 2w\) nor an RFC 3339 date-time/,
    },
    {
      args: () => ['keys', 'create', '--id', 'a', '--expires', '2000-01-01T00:00:00Z'],
      says: /^lm-gate keys create: --expires: 2000-01-01T00:00:00Z is not in the future; usage: /,
    },
    {
      args: () => ['keys', 'create', '--id', 'a', '--label', 'owner'],
      says: /^lm-gate keys create: --label: expected NAME=VALUE, not "owner"; usage: /,
    },
    { args: () => ['keys', 'list'], says: /^lm-gate keys list: --file FILE is required; usage: lm-gate keys list / },
    { args: () => ['keys', 'revoke', '--file', file('k.yaml')], says: /^lm-gate keys revoke: one key ID is required/ },
    {
      args: () => ['keys', 'rotate', '--file', file('k.yaml'), 'a', '--grace', '1 week'],
      says: /^lm-gate keys rotate: --grace: "1 week" is not a duration \(7d, 12h, 30m, 2w\); usage: /,
    },
  ];
  for (const t of table) {
    it.concurrent(`lm-gate ${t.args().join(' ')}`, async () => {
      const r = await cli(t.args());
      expectNoStack(r);
      expect(r.code).toBe(2);
      expect(messageLines(r.stderr)).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(t.says);
    });
  }

  it.concurrent('lm-gate with no command prints the usage, exit 2', async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^usage:\n {2}lm-gate serve -c FILE\n/);
  });

  for (const args of [
    ['--help'],
    ['serve', '--help'],
    ['check-config', '-h'],
    ['keys', '--help'],
    ['keys', 'create', '--help'],
    ['keys', 'rotate', '-h'],
  ]) {
    it.concurrent(`lm-gate ${args.join(' ')} prints usage on stdout, exit 0`, async () => {
      const r = await cli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/usage:/);
      expect(r.stderr).toBe('');
    });
  }
});

describe('a bad config file: the file and each problem, exit 1', () => {
  const table: { name: string; args: () => string[]; says: string[] }[] = [
    {
      name: 'missing file',
      args: () => ['check-config', file('missing.yaml')],
      says: [`${file('missing.yaml')}: cannot read the file: no such file or directory (ENOENT)`],
    },
    {
      name: 'a directory',
      args: () => ['check-config', file('a-directory.yaml')],
      says: [`${file('a-directory.yaml')}: cannot read the file: illegal operation on a directory (EISDIR)`],
    },
    {
      name: 'empty file',
      args: () => ['check-config', file('empty.yaml')],
      says: [
        `${file('empty.yaml')}: invalid configuration`,
        '  - the file is empty (or only comments); write {} to run on every default',
      ],
    },
    {
      name: 'only comments',
      args: () => ['check-config', file('comments.yaml')],
      says: [
        `${file('comments.yaml')}: invalid configuration`,
        '  - the file is empty (or only comments); write {} to run on every default',
      ],
    },
    {
      name: 'enum',
      args: () => ['check-config', file('enum.yaml')],
      says: [
        `${file('enum.yaml')}: invalid configuration`,
        '  - logging.level: expected one of fatal, error, warn, info, debug, trace, silent',
      ],
    },
    {
      name: 'YAML syntax',
      args: () => ['check-config', file('syntax.yaml')],
      says: [
        `${file('syntax.yaml')}: invalid configuration`,
        `  - ${file('syntax.yaml')}:2:16: Nested mappings are not allowed in compact mappings`,
      ],
    },
    {
      name: 'port out of range (check-config)',
      args: () => ['check-config', file('port.yaml')],
      says: [
        `${file('port.yaml')}: invalid configuration`,
        '  - server.adminAddress: port must be between 0 and 65535 (0 picks a free port)',
      ],
    },
    {
      name: 'port out of range (serve: refused before binding anything)',
      args: () => ['serve', '-c', file('port.yaml')],
      says: [
        `${file('port.yaml')}: invalid configuration`,
        '  - server.adminAddress: port must be between 0 and 65535 (0 picks a free port)',
      ],
    },
    {
      name: 'two problems',
      args: () => ['check-config', file('two-problems.yaml')],
      says: [
        `${file('two-problems.yaml')}: invalid configuration`,
        '  - server.grpcAddress: expected host:port, for example 127.0.0.1:50051',
        '  - logging.level: expected one of fatal, error, warn, info, debug, trace, silent',
      ],
    },
    {
      name: 'missing file (serve)',
      args: () => ['serve', '-c', file('missing.yaml')],
      says: [`${file('missing.yaml')}: cannot read the file: no such file or directory (ENOENT)`],
    },
    {
      name: 'a keys file that is not there (serve: refused before binding anything)',
      args: () => ['serve', '-c', file('keys-missing.yaml')],
      says: [
        `${file('keys-missing.yaml')}: identity.keysFile: cannot read ${file('no-such-keys.yaml')}: no such file or directory (ENOENT)`,
      ],
    },
    {
      name: 'a key id both in the config and in its keys file',
      args: () => ['check-config', file('keys-dup.yaml')],
      says: [
        `${file('keys-ok.yaml')}: invalid keys file`,
        `  - keys[0].id: duplicate key id "a": also in ${file('keys-dup.yaml')} at identity.apiKeys[0]`,
      ],
    },
    {
      name: 'keys list of a file that is not there',
      args: () => ['keys', 'list', '--file', file('missing.yaml')],
      says: [`${file('missing.yaml')}: cannot read the file: no such file or directory (ENOENT)`],
    },
    {
      name: 'keys list of an invalid keys file',
      args: () => ['keys', 'list', '--file', file('keys-bad.yaml')],
      says: [
        `${file('keys-bad.yaml')}: invalid keys file`,
        '  - keys[0].expiresAt: expected an RFC 3339 date-time with a time zone, for example 2026-01-31T00:00:00Z',
      ],
    },
    {
      name: 'keys revoke of an id the file does not have',
      args: () => ['keys', 'revoke', '--file', file('keys-ok.yaml'), 'nobody'],
      says: [`${file('keys-ok.yaml')}: no key with id "nobody"`],
    },
    {
      name: 'keys create while another command holds the lock',
      args: () => ['keys', 'create', '--file', file('keys-locked.yaml'), '--id', 'b', '--tenant', 't'],
      says: [
        `${file('keys-locked.yaml')}: another command is editing it (${file('keys-locked.yaml.lock')} exists, left by process 4242); try again, or delete the lock file if no such command is running`,
      ],
    },
  ];
  for (const t of table) {
    it.concurrent(t.name, async () => {
      const r = await cli(t.args());
      expectNoStack(r);
      expect(r.code).toBe(1);
      expect(messageLines(r.stderr)).toEqual(t.says);
    });
  }
});

it.concurrent('check-config counts the keys of the keys file among the keys', async () => {
  const r = await cli(['check-config', file('keys-joined.yaml')]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(`${file('keys-joined.yaml')}: ok (2 API keys, 1 of them from ${file('keys-ok.yaml')})\n`);
});

describe('serve cannot listen: one line naming the field and the address, exit 1, at once', () => {
  // "At once" is relative to how long this machine takes to start the CLI at all: a
  // check-config run beside the failing serves (a fixed 5 s bound failed on a loaded machine
  // at 5.5 s, where every Node start took that long).
  let startMs = 0;
  beforeAll(async () => {
    startMs = (await cli(['check-config', file('keys-joined.yaml')])).ms;
  });
  const table: { name: string; config: string; says: () => RegExp }[] = [
    {
      name: 'the gRPC port is in use',
      config: 'grpc-busy.yaml',
      says: () =>
        new RegExp(
          `: server\\.grpcAddress: cannot listen on 127\\.0\\.0\\.1:${busyPort}: address already in use \\(EADDRINUSE\\)`,
        ),
    },
    {
      name: 'the admin port is in use',
      config: 'admin-busy.yaml',
      says: () =>
        new RegExp(
          `: server\\.adminAddress: cannot listen on 127\\.0\\.0\\.1:${busyPort}: address already in use \\(EADDRINUSE\\)`,
        ),
    },
    {
      name: 'the address is not on this machine',
      config: 'not-here.yaml',
      says: () => /: server\.grpcAddress: cannot listen on 192\.0\.2\.1:50051: address not available \(EADDRNOTAVAIL\)/,
    },
    {
      name: "the Unix socket's directory does not exist",
      config: 'socket-dir-missing.yaml',
      says: () => /: server\.unixSocket: cannot listen on \S+gate\.sock: /,
    },
  ];
  for (const t of table) {
    it.concurrent(t.name, async () => {
      const r = await cli(['serve', '-c', file(t.config)]);
      expectNoStack(r);
      expect(r.code).toBe(1);
      const lines = messageLines(r.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(`${file(t.config)}: server.`)).toBe(true);
      expect(lines[0]).toMatch(t.says());
      // Node's start-up is most of it; the gate neither retries nor waits for a timeout (the
      // smallest retry or timeout would add seconds on top of a start).
      expect(r.ms).toBeLessThan(Math.max(5000, 3 * startMs + 2000));
    });
  }
});
