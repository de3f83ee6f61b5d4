// The loader process gives what loading in-process gives: the same config, and for a bad config
// or keys file a ConfigError with the same message and problems, so a failed start and a
// rejected reload read as they did before the loader moved out of the gate.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness/temp-dirs.ts';
import { ConfigError } from './config-error.ts';
import { loadConfigSources } from './load.ts';
import { checkConfigInChild, loadConfigInChild, loaderCounts, prewarmLoader, spareLoaderPid } from './load-in-child.ts';

const KEY = `{ id: k1, sha256: "${'b'.repeat(64)}", tenant: acme }`;
let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await tempDir('lmg-load-child-');
  await mkdir(file('a-directory.yaml'));
  const files: Record<string, string> = {
    'good.yaml': `logging:\n  level: \${LEVEL}\nidentity:\n  keysFile: keys.yaml\n`,
    'keys.yaml': `keys: [${KEY}]\n`,
    'empty.yaml': '# nothing\n',
    'two-problems.yaml': 'server:\n  grpcAddress: nope\nlogging:\n  level: loud\n',
    'no-keys-file.yaml': 'identity:\n  keysFile: absent.yaml\n',
    'bad-keys.yaml': 'identity:\n  keysFile: bad-keys-file.yaml\n',
    'bad-keys-file.yaml': 'keys: [{ id: k2 }]\n',
    'duplicate.yaml': `identity:\n  apiKeys: [${KEY}]\n  keysFile: keys.yaml\n`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(file(name), text);
  // Nobody ever writes these: opening one for reading blocks for good.
  execFileSync('mkfifo', [file('fifo.yaml'), file('fifo-keys.yaml')]);
});

/** What loading throws, in-process or not. */
async function failure(load: Promise<unknown>): Promise<unknown> {
  return load.then(
    () => 'loaded',
    (err: unknown) => err,
  );
}

describe('loadConfigInChild', () => {
  it('loads the config and its keys file, with the environment it is given', async () => {
    const env = { LEVEL: 'debug' };
    const loaded = await loadConfigInChild(file('good.yaml'), env);
    expect(loaded).toStrictEqual(await loadConfigSources(file('good.yaml'), env));
    expect([loaded.config.logging.level, loaded.keysFromFile]).toEqual(['debug', 1]);
  });

  it.each([
    'missing.yaml',
    'a-directory.yaml',
    'empty.yaml',
    'two-problems.yaml',
    'no-keys-file.yaml',
    'bad-keys.yaml',
    'duplicate.yaml',
  ])('refuses %s with the ConfigError loading in-process throws', async (name) => {
    const inProcess = await failure(loadConfigSources(file(name), {}));
    const inChild = await failure(loadConfigInChild(file(name), {}));
    expect(inProcess).toBeInstanceOf(ConfigError);
    expect(inChild).toBeInstanceOf(ConfigError);
    const { message, problems } = inProcess as ConfigError;
    expect({ message: (inChild as ConfigError).message, problems: (inChild as ConfigError).problems }).toEqual({
      message,
      problems,
    });
  });
});

describe('a loader that does not answer', () => {
  it.each([
    ['a config file', (o: { timeoutMs: number }) => loadConfigInChild(file('fifo.yaml'), {}, o)],
    [
      'a keys file, on reload',
      (o: { timeoutMs: number }) =>
        checkConfigInChild(file('x.yaml'), 'identity:\n  keysFile: fifo-keys.yaml\n', {}, o),
    ],
  ])('is killed after its timeout when it reads a FIFO nobody writes: %s', async (_what, load) => {
    const t0 = performance.now();
    const err = await failure(load({ timeoutMs: 400 }));
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(String(err)).toMatch(
      /the config loader did not answer within 400 ms \(is .* a FIFO or on a stalled mount\?\)/,
    );
  });
});

describe('checkConfigInChild (the reload watcher)', () => {
  it('names the keys file to follow and its text', async () => {
    const r = await checkConfigInChild(file('good.yaml'), 'identity:\n  keysFile: keys.yaml\n', {});
    expect(r.follow).toEqual({ keysFile: file('keys.yaml') });
    expect(r.keysPart).toBe(`keys: [${KEY}]\n`);
    expect(r.result.ok && r.result.value.identity.apiKeys.map((k) => k.id)).toEqual(['k1']);
  });

  it('follows a keys file that cannot be read, and marks it by its error code', async () => {
    const r = await checkConfigInChild(file('x.yaml'), 'identity:\n  keysFile: absent.yaml\n', {});
    expect(r.follow).toEqual({ keysFile: file('absent.yaml') });
    expect(r.keysPart).toBe('\0unreadable ENOENT');
    expect(!r.result.ok && r.result.error.message).toBe(
      `${file('x.yaml')}: identity.keysFile: cannot read ${file('absent.yaml')}: no such file or directory (ENOENT)`,
    );
  });

  it('follows nothing new when the text is not a valid config', async () => {
    const r = await checkConfigInChild(file('x.yaml'), 'logging:\n  level: loud\n', {});
    expect(r.follow).toBeUndefined();
    expect(r.keysPart).toBeUndefined();
    expect(!r.result.ok && r.result.error).toMatchObject({
      configError: true,
      problems: [expect.stringMatching(/^logging\.level: /)],
    });
  });
});

describe('a loader started ahead (prewarmLoader, at a change event)', () => {
  const check = () => checkConfigInChild(file('good.yaml'), 'identity:\n  keysFile: keys.yaml\n', {});
  const counts = () => ({ ...loaderCounts });

  it('takes the next request: no second process, the same answer', async () => {
    const before = counts();
    prewarmLoader();
    prewarmLoader(); // a burst of events: still one
    const r = await check();
    expect(r.result.ok && r.result.value.identity.apiKeys.map((k) => k.id)).toEqual(['k1']);
    expect(counts()).toEqual({
      started: before.started + 1,
      ahead: before.ahead + 1,
      aheadUsed: before.aheadUsed + 1,
    });
    // Used once: the next request starts its own.
    await check();
    expect(loaderCounts.started).toBe(before.started + 2);
  });

  it('is let go when no request comes, and the next request starts its own', async () => {
    const before = counts();
    prewarmLoader(100);
    await new Promise((r) => setTimeout(r, 400));
    const r = await check();
    expect(r.result.ok).toBe(true);
    expect(counts()).toEqual({ started: before.started + 2, ahead: before.ahead + 1, aheadUsed: before.aheadUsed });
  });

  it('one that died before its request is not used', async () => {
    const before = counts();
    prewarmLoader();
    process.kill(spareLoaderPid()!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const r = await check();
    expect(r.result.ok).toBe(true);
    expect(counts()).toEqual({ started: before.started + 2, ahead: before.ahead + 1, aheadUsed: before.aheadUsed });
  });
});
