// `lm-gate kill` as an operator meets it, against a real redis-server: kill, list and lift; every
// mistake one line on stderr with exit 2 (command line) or 1 (config, Redis); the Redis password
// never printed. And `lm-gate serve` with Redis unreachable still starts and is ready.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis as RedisClient } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LM_GATE_BIN, runCli } from '../harness/cli.ts';
import { freePort, waitFor } from '../harness/ports.ts';
import { Proc } from '../harness/processes.ts';
import { type Redis, startRedis } from '../harness/redis.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const cli = (args: string[]) => runCli(args);

let redis: Redis;
let dir: string;
let client: RedisClient;
const cfg = (name: string) => join(dir, name);

beforeAll(async () => {
  redis = await startRedis();
  client = new RedisClient(redis.url);
  dir = await tempDir('lm-gate-kill-cli-');
  const closed = await freePort();
  const files: Record<string, string> = {
    'gate.yaml': `redis: { url: "${redis.url}", keyPrefix: "cli:" }\nkillSwitch: { users: [root-admin] }\n`,
    'no-redis.yaml': '{}\n',
    'unreachable.yaml': `redis: { url: "redis://:hunter2@127.0.0.1:${closed}/0", connectTimeoutMs: 500 }\n`,
    'no-model-stage.yaml': `redis: { url: "${redis.url}", keyPrefix: "cli:" }\npipeline: { stages: [identity.authenticate, killswitch.principal, llm.api_shape] }\n`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(cfg(name), text);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe('lm-gate kill', () => {
  it('kills, lists and lifts through Redis', async () => {
    const killed = await cli(['kill', 'user', 'mallory', '--reason', 'phished', '--ttl', '2h', '-c', cfg('gate.yaml')]);
    expect(killed.stderr).toBe('');
    expect(killed.code).toBe(0);
    expect(killed.stdout).toMatch(
      new RegExp(
        `^killed user mallory until \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z, on every replica that shares Redis 127\\.0\\.0\\.1:${redis.port} \\(key prefix "cli:"\\)\\n$`,
      ),
    );
    const stored = JSON.parse((await client.hget('cli:{kill}:user', 'mallory'))!);
    expect(stored).toMatchObject({ source: 'cli', reason: 'phished' });
    expect(stored.expiresAt - stored.at).toBe(2 * 3600 * 1000);

    expect((await cli(['kill', 'key', 'ci-nightly', '-c', cfg('gate.yaml')])).code).toBe(0);
    const list = await cli(['kill', '--list', '-c', cfg('gate.yaml')]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^KIND +ID +SOURCE +SINCE +UNTIL +BY +REASON$/);
    expect(lines.slice(1).map((l) => l.split(/ +/).slice(0, 3))).toEqual([
      ['key', 'ci-nightly', 'redis:cli'],
      ['user', 'mallory', 'redis:cli'],
      ['user', 'root-admin', 'file'],
    ]);
    expect(lines[2]).toMatch(/phished$/);

    const lifted = await cli(['kill', '--lift', 'user', 'mallory', '-c', cfg('gate.yaml')]);
    expect(lifted.code).toBe(0);
    expect(lifted.stdout).toMatch(/^lifted user mallory on every replica that shares Redis /);
    expect(await client.hexists('cli:{kill}:user', 'mallory')).toBe(0);

    const again = await cli(['kill', '--lift', 'user', 'mallory', '-c', cfg('gate.yaml')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /^lm-gate kill: no kill of user mallory in Redis 127\.0\.0\.1:\d+ \(key prefix "cli:"\)\n$/,
    );

    // A kill the config file makes itself is not Redis's to lift.
    const fromFile = await cli(['kill', '--lift', 'user', 'root-admin', '-c', cfg('gate.yaml')]);
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toMatch(/gate\.yaml kills it itself \(killSwitch, or a disabled key\): edit the config/);
  });

  it('warns when the config it was given does not run the stage that enforces the kill', async () => {
    const r = await cli(['kill', 'model', 'llama-3.1-70b', '-c', cfg('no-model-stage.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: .*no-model-stage\.yaml's pipeline\.stages leaves out killswitch\.model/);
  });

  it.each([
    [['kill', 'user', 'u'], 2, /^lm-gate kill: -c FILE is required; usage: /],
    [['kill', 'group', 'g', '-c', 'x.yaml'], 2, /^lm-gate kill: unknown KIND "group"/],
    [['kill', 'user', 'u', '--ttl', 'forever', '-c', 'x.yaml'], 2, /^lm-gate kill: --ttl "forever"/],
    [['kill', 'user', 'u', '-c', 'NO_REDIS'], 1, /no redis section, and the kill switch is shared only through Redis/],
    [['kill', 'user', 'u', '-c', 'NOT_THERE'], 1, /not-there\.yaml: cannot read the file/],
  ])('%j: one line, exit %i', async (args, code, says) => {
    const resolved = args.map((a) =>
      a === 'NO_REDIS' ? cfg('no-redis.yaml') : a === 'NOT_THERE' ? cfg('not-there.yaml') : a,
    );
    const r = await cli(resolved);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(says);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('Redis unreachable: one line naming host and port only, within the connect timeout, exit 1', async () => {
    const r = await cli(['kill', 'user', 'u', '-c', cfg('unreachable.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lm-gate kill: cannot reach Redis at 127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n$/);
    expect(r.stderr).not.toContain('hunter2');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('lm-gate serve with Redis unreachable', () => {
  it('starts, is ready, says the kill switch view is stale, and never logs the password', async () => {
    const admin = await freePort();
    const closed = await freePort();
    await writeFile(
      cfg('serve.yaml'),
      `server: { grpcAddress: "127.0.0.1:0", adminAddress: "127.0.0.1:${admin}" }\naudit: { path: ${cfg('audit.log')} }\nredis: { url: "redis://:hunter2@127.0.0.1:${closed}/0", connectTimeoutMs: 300 }\n`,
    );
    const proc = new Proc('lm-gate', process.execPath, [LM_GATE_BIN, 'serve', '-c', cfg('serve.yaml')]);
    try {
      await waitFor('ready', async () => {
        const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
        return r?.status === 200 ? true : undefined;
      });
      const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
      expect(metrics).toMatch(/^lmgate_kill_switch_redis_stale 1$/m);
      expect(metrics).toMatch(/^lmgate_redis_connected\{role="kill-switch"\} 0$/m);
      expect(proc.stderr).toContain("kill switch: Redis not read yet; serving with this config's kills until it is");
      expect(proc.stderr).not.toContain('hunter2');
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0);
    }
    expect(proc.stderr).not.toContain('hunter2');
  });
});
