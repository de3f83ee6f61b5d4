// The gate's life around real traffic: SIGTERM under load, hot reload (good and bad), the
// check-config CLI, and Envoy reaching the gate over a Unix socket.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashApiKey } from '../../extproc/identity/api-keys.ts';
import { ROOT } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { waitFor } from '../harness/ports.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const run = promisify(execFile);
const alice = makeKey('alice', { tenant: 'acme' });
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const openai = (s: Stack, key: string) => new OpenAI({ baseURL: s.baseURL, apiKey: key, maxRetries: 0 });

describe('SIGTERM under load', () => {
  it('in-flight requests complete, each with its audit line, and the gate exits 0', async () => {
    stack = await startStack({ keys: [alice], mock: { chunks: 20, chunkDelayMs: 40 } });
    const s = stack;
    const client = openai(s, alice.key);
    // 12 streams of ~0.8 s each are in flight when SIGTERM arrives.
    const inflight = Array.from({ length: 12 }, async () => {
      const stream = await client.chat.completions.create({
        model: 'mock-small',
        messages: [{ role: 'user', content: 'long answer please' }],
        stream: true,
      });
      let n = 0;
      for await (const c of stream) if (c.choices[0]?.delta?.content) n++;
      return n;
    });
    await waitFor('streams in flight', async () => (s.mock.received.length >= 12 ? true : undefined));
    const exit = s.gate.stop('SIGTERM');
    const counts = await Promise.all(inflight);
    expect(counts).toEqual(Array(12).fill(20));
    expect(await exit).toBe(0);
    const audit = await s.gate.audit();
    expect(audit).toHaveLength(12);
    expect(audit.map((r) => [r.outcome, r.gen_ai.usage?.output_tokens, r.failure])).toEqual(
      Array(12).fill(['completed', 20, null]),
    );
    expect(new Set(audit.map((r) => r.request_id)).size).toBe(12);
  });
});

describe('hot reload', () => {
  it('applies a valid new config and keeps serving on an invalid one', async () => {
    stack = await startStack({ keys: [alice] });
    const s = stack;
    const carol = makeKey('carol', { tenant: 'initech' });
    const { parse } = await import('yaml');
    const { readFile } = await import('node:fs/promises');
    const current = parse(await readFile(s.gate.configPath, 'utf8'));

    // carol is unknown...
    await expect(openai(s, carol.key).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    // ...until the config adds her
    current.identity.apiKeys.push({ id: 'carol', sha256: hashApiKey(carol.key), tenant: 'initech' });
    await s.gate.writeConfig(current);
    await waitFor('reload applied', async () => {
      try {
        await openai(s, carol.key).models.list();
        return true;
      } catch {
        return undefined;
      }
    });

    // A broken file is rejected with a log line naming the field; the old config keeps serving.
    await s.gate.writeConfig('identity:\n  apiKeys:\n    - id: dave\n      sha256: not-a-hash\n      tenant: x\n');
    await waitFor('reload rejected', async () =>
      s.gate.proc.stderr.includes('config reload rejected') ? true : undefined,
    );
    const rejected = s.gate.proc.stderr.split('\n').filter((l) => l.includes('config reload rejected'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toContain('identity.apiKeys[0].sha256');
    expect((await openai(s, carol.key).models.list()).data.length).toBeGreaterThan(0);
    expect((await openai(s, alice.key).models.list()).data.length).toBeGreaterThan(0);
    expect(await s.gate.metrics()).toMatch(/lmgate_config_reloads_total\{result="rejected"\} 1/);
  });
});

describe('Unix socket', () => {
  it('Envoy reaches the gate over a Unix socket', async () => {
    stack = await startStack({ keys: [alice], unixSocket: true });
    const res = await openai(stack, alice.key).chat.completions.create({
      model: 'mock-small',
      messages: [{ role: 'user', content: 'over a socket' }],
    });
    expect(res.choices[0]?.message.content).toBe('Hello from the mock model');
    const id = stack.mock.received.at(-1)?.headers['x-request-id'] as string;
    expect(await stack.gate.auditFor(id)).toMatchObject({
      outcome: 'completed',
      gen_ai: { usage: { output_tokens: 5 } },
    });
  });
});

describe('lm-gate CLI', () => {
  const cli = (...args: string[]) =>
    run(process.execPath, [join(ROOT, 'bin', 'lm-gate.js'), ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
    );

  it('check-config names the bad field and exits 1; a good file exits 0', async () => {
    const dir = (await import('node:fs/promises')).mkdtemp(join((await import('node:os')).tmpdir(), 'lmg-cli-'));
    const bad = join(await dir, 'bad.yaml');
    await writeFile(
      bad,
      stringify({ server: { grpcAddress: 'nope' }, identity: { apiKeys: [{ id: 'a', tenant: 't' }] }, bogus: 1 }),
    );
    const r = await cli('check-config', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('server.grpcAddress');
    expect(r.stderr).toContain('identity.apiKeys[0].sha256');
    expect(r.stderr).toContain('unknown field(s) "bogus"');

    const good = join(await dir, 'good.yaml');
    await writeFile(good, stringify({ identity: { apiKeys: [{ id: 'a', tenant: 't', sha256: hashApiKey('k') }] } }));
    expect((await cli('check-config', good)).code).toBe(0);
  });

  it('serve with a bad config exits non-zero naming the field', async () => {
    const dir = await (await import('node:fs/promises')).mkdtemp(join((await import('node:os')).tmpdir(), 'lmg-cli-'));
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'audit:\n  maxPendingBytes: -5\n');
    const r = await cli('serve', '-c', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('audit.maxPendingBytes');
  });

  it('keys create prints a key whose hash is the config line it prints', async () => {
    const r = await cli('keys', 'create', '--id', 'ci', '--tenant', 'acme');
    expect(r.code).toBe(0);
    const key = /API key \(shown once, store it now\): (lmg_\S+)/.exec(r.stdout)?.[1];
    expect(key).toBeDefined();
    expect(r.stdout).toContain(`sha256: ${hashApiKey(key!)}`);
    expect(r.stdout).toContain('- id: ci');
  });
});
