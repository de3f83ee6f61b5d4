// The README's first command: the quickstart starts, prints a curl that works as printed, and
// Ctrl-C stops everything.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { ROOT } from '../harness/envoy.ts';
import { freePort, waitFor } from '../harness/ports.ts';
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
        if (!qs.running) throw new Error(`quickstart exited\n${qs.describe()}`);
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

it('npm run quickstart prints a curl that works, and Ctrl-C stops it', async () => {
  const port = await freePort();
  const qs = await startQuickstart(['--port', String(port)]);
  try {
    // The first command after "Try it:", continuation lines joined, run by a shell as printed.
    const block = qs.stdout.split('Try it:')[1]!.trim().split('\n\n')[0]!;
    const command = block.replace(/\\\n\s*/g, ' ').trim();
    expect(command).toMatch(/^curl /);
    const { stdout } = await sh('sh', ['-c', command]);
    const res = JSON.parse(stdout);
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0].message.content).toContain('Hello from the mock model');

    // Without the key: 401 in OpenAI's shape.
    const anon = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as any).error.type).toBe('authentication_error');

    qs.child.kill('SIGINT');
    expect(await qs.wait()).toBe(0);
    // Envoy is gone with it: the port no longer answers.
    await expect(fetch(`http://127.0.0.1:${port}/v1/models`)).rejects.toThrow();
  } finally {
    await qs.stop('SIGKILL');
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
