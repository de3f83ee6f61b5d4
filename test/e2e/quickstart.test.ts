// The README's first command: the quickstart starts, prints curls that work as printed (one
// answered, one refused with 403 for the restricted key), points at files that exist, and
// Ctrl-C stops everything and removes them. A busy port is reported before anything starts.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { ROOT } from '../harness/envoy.ts';
import { freePort, GiveUp, waitFor } from '../harness/ports.ts';
import { Proc } from '../harness/processes.ts';
import { startMockModel } from '../mock/model-server.ts';

const sh = promisify(execFile);

/** Starts scripts/quickstart.ts and waits for its banner. */
async function startQuickstart(args: string[]): Promise<Proc> {
  const qs = new Proc('quickstart', process.execPath, [join(ROOT, 'scripts', 'quickstart.ts'), ...args]);
  try {
    await waitFor(
      'quickstart banner',
      async () => {
        if (!qs.running) throw new GiveUp(`quickstart exited\n${qs.describe()}`);
        return qs.stdout.includes('Ctrl-C stops') ? true : undefined;
      },
      60_000,
    );
  } catch (err) {
    await qs.stop('SIGKILL');
    throw err;
  }
  return qs;
}

/** The banner's curl commands, continuation lines joined, as a shell would run them. */
function printedCurls(stdout: string): string[] {
  return stdout
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.startsWith('curl '))
    .map((block) => block.replace(/\\\n\s*/g, ' '));
}

/** Runs a printed `curl -s -w '\nHTTP %{http_code}\n' ...`: its status and JSON body. */
async function runWithStatus(command: string): Promise<{ status: number; body: any }> {
  const { stdout } = await sh('sh', ['-c', command]);
  const m = /^([\s\S]*)\nHTTP (\d{3})\n$/.exec(stdout);
  if (!m) throw new Error(`unexpected curl output: ${stdout}`);
  return { status: Number(m[2]), body: JSON.parse(m[1]!) };
}

it('npm run quickstart prints curls that work, and files that exist; Ctrl-C stops it and removes them', async () => {
  const port = await freePort();
  const qs = await startQuickstart(['--port', String(port)]);
  try {
    const [chat, streamed, allowed, refused, ...more] = printedCurls(qs.stdout);
    expect(more).toEqual([]);
    expect(streamed).toMatch(/^curl -sN /);

    // The first command after "Try it:", run by a shell as printed.
    const { stdout } = await sh('sh', ['-c', chat!]);
    const res = JSON.parse(stdout);
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0].message.content).toContain('Hello from the mock model');

    // The restricted key: the model it may use answers, another is refused by policy.
    const restrictedKey = /Restricted {3}(lmg_\S+) {3}\(mock-small only\)/.exec(qs.stdout)![1]!;
    expect(allowed).toContain(restrictedKey);
    expect(refused).toContain(restrictedKey);
    const ok = await runWithStatus(allowed!);
    expect(ok.status).toBe(200);
    expect(ok.body.model).toBe('mock-small');
    const no = await runWithStatus(refused!);
    expect(no.status).toBe(403);
    expect(no.body.error).toMatchObject({ type: 'permission_error', code: 'model_not_allowed' });

    // Without the key: 401 in OpenAI's shape.
    const anon = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as any).error.type).toBe('authentication_error');

    // Every printed file exists, in one folder; the logs and the audit log have the requests.
    const printed = (label: string) => new RegExp(`^ {2}${label} +(\\S+)`, 'm').exec(qs.stdout)?.[1];
    const files = {
      config: printed('Config'),
      audit: printed('Audit log'),
      gateLog: printed('Gate log'),
      envoyLog: printed('Envoy log'),
    };
    for (const f of Object.values(files)) expect(f && existsSync(f), `${f} exists`).toBe(true);
    const folder = files.config!.replace(/\/lm-gate\.yaml$/, '');
    for (const f of Object.values(files)) expect(f!.startsWith(`${folder}/`)).toBe(true);
    const { readFile } = await import('node:fs/promises');
    await waitFor('audit records', async () =>
      (await readFile(files.audit!, 'utf8')).trim().split('\n').length >= 4 ? true : undefined,
    );
    await waitFor('access log lines', async () =>
      (await readFile(files.envoyLog!, 'utf8')).includes('"status":403') ? true : undefined,
    );
    expect(await readFile(files.gateLog!, 'utf8')).toContain('lm-gate serving');

    qs.child.kill('SIGINT');
    expect(await qs.wait()).toBe(0);
    // Envoy is gone with it: the port no longer answers; the folder is removed.
    await expect(fetch(`http://127.0.0.1:${port}/v1/models`)).rejects.toThrow();
    expect(existsSync(folder)).toBe(false);
  } finally {
    await qs.stop('SIGKILL');
  }
});

it('a busy --port is reported at once, in one line naming it, before anything starts', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const started = Date.now();
    const qs = spawn(process.execPath, [join(ROOT, 'scripts', 'quickstart.ts'), '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    qs.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    qs.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => qs.once('close', resolve));
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `quickstart: port ${port} (--port) is already in use; stop what is using it or choose another: ` +
        `npm run quickstart -- --port ${port + 1}\n`,
    );
    // Node's start-up, not Envoy's: nothing else was started and waited for.
    expect(Date.now() - started).toBeLessThan(5000);
  } finally {
    taken.close();
  }
});

it('--upstream puts the gate in front of another server, reached by name', async () => {
  const upstream = await startMockModel({ chunks: 3 });
  const port = await freePort();
  const qs = await startQuickstart([
    '--port',
    String(port),
    '--upstream',
    `http://localhost:${upstream.port}`,
    '--model',
    'mock-large',
  ]);
  try {
    expect(qs.stdout).toContain(`Model        http://localhost:${upstream.port}`);
    const key = /Demo API key (lmg_\S+)/.exec(qs.stdout)![1]!;
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-large', messages: [{ role: 'user', content: 'via name' }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).choices[0].message.content).toBe('Hello from the');
    const got = upstream.received.at(-1)!;
    expect(got.headers.host).toBe(`localhost:${upstream.port}`);
    expect(got.headers.authorization).toBeUndefined();
    qs.child.kill('SIGINT');
    expect(await qs.wait()).toBe(0);
  } finally {
    await qs.stop('SIGKILL');
    await upstream.close();
  }
});
