// The keys file as the loader reads it: its keys join the config's, every problem names the file
// and the entry, a key id in both places is refused naming both, and a keys file that is not there
// is one clear line.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../identity/api-keys.ts';
import { ConfigError } from './config-error.ts';
import { parseKeysFile } from './keys-file.ts';
import { loadConfigSources } from './load.ts';

const H = (s: string) => hashApiKey(s);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lmg-keys-file-'));
  await mkdir(join(dir, 'secret'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function problems(text: string): string[] {
  try {
    parseKeysFile(text, 'keys.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('parseKeysFile', () => {
  it('reads YAML and JSON, filling the same defaults as config keys', () => {
    const yaml = parseKeysFile(`keys:\n  - { id: a, sha256: ${H('a')}, tenant: t }\n`, 'keys.yaml');
    const json = parseKeysFile(JSON.stringify({ keys: [{ id: 'a', sha256: H('a'), tenant: 't' }] }), 'keys.json');
    expect(json).toEqual(yaml);
    expect(yaml[0]).toMatchObject({ models: ['*'], endpoints: ['*'], disabled: false, labels: {}, attributes: {} });
  });

  const table: { name: string; text: string; says: string[] }[] = [
    {
      name: 'empty',
      text: '# nothing yet\n',
      says: ['the file is empty (or only comments); a file without keys says keys: []'],
    },
    {
      name: 'no keys list',
      text: 'apiKeys: []\n',
      says: ['keys: Invalid input: expected array, received undefined', '(root): unknown field(s) "apiKeys"'],
    },
    { name: 'YAML syntax', text: 'keys: [\n', says: [expect.stringMatching(/^keys\.yaml:2:1: /) as unknown as string] },
    {
      name: 'a bad expiry',
      text: `keys: [{ id: a, sha256: ${H('a')}, tenant: t, expiresAt: tomorrow }]`,
      says: ['keys[0].expiresAt: expected an RFC 3339 date-time with a time zone, for example 2026-01-31T00:00:00Z'],
    },
    {
      name: 'a duplicate id, and a previous hash that is another key',
      text: `keys: [{ id: a, sha256: ${H('a')}, tenant: t }, { id: a, sha256: ${H('b')}, tenant: t, previous: { sha256: ${H('a')}, expiresAt: 2026-01-01T00:00:00Z } }]`,
      says: ['keys[1].id: duplicate key id "a"', 'keys[1].previous.sha256: duplicate key hash'],
    },
    {
      name: 'a label that is not a string',
      text: `keys: [{ id: a, sha256: ${H('a')}, tenant: t, labels: { n: 1 } }]`,
      says: ['keys[0].labels.n: Invalid input: expected string, received number'],
    },
  ];
  for (const t of table) it(`refuses ${t.name}`, () => expect(problems(t.text).sort()).toEqual([...t.says].sort()));

  it("the error's first line names the file as a keys file", () => {
    expect(() => parseKeysFile('keys: 1', '/run/keys.yaml')).toThrow(
      /^\/run\/keys\.yaml: invalid keys file\n {2}- keys: /,
    );
  });
});

describe('loadConfigSources with identity.keysFile', () => {
  const config = (keysFile: string, apiKeys = '[]') => `identity:\n  keysFile: ${keysFile}\n  apiKeys: ${apiKeys}\n`;

  it("joins the file's keys after the config's, the file found relative to the config", async () => {
    await writeFile(join(dir, 'secret', 'keys.yaml'), `keys:\n  - { id: from-file, sha256: ${H('f')}, tenant: t }\n`);
    await writeFile(
      join(dir, 'joined.yaml'),
      config('secret/keys.yaml', `[{ id: inline, sha256: ${H('i')}, tenant: t }]`),
    );
    const loaded = await loadConfigSources(join(dir, 'joined.yaml'), {});
    expect(loaded.config.identity.apiKeys.map((k) => k.id)).toEqual(['inline', 'from-file']);
    expect(loaded.keysFile).toBe(join(dir, 'secret', 'keys.yaml'));
    expect(loaded.keysFromFile).toBe(1);
  });

  it('a key id in both places is refused, naming both', async () => {
    await writeFile(join(dir, 'secret', 'dup.yaml'), `keys:\n  - { id: bob, sha256: ${H('f')}, tenant: t }\n`);
    await writeFile(join(dir, 'dup.yaml'), config('secret/dup.yaml', `[{ id: bob, sha256: ${H('i')}, tenant: t }]`));
    const err = await loadConfigSources(join(dir, 'dup.yaml'), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `${join(dir, 'secret', 'dup.yaml')}: invalid keys file\n  - keys[0].id: duplicate key id "bob": also in ${join(dir, 'dup.yaml')} at identity.apiKeys[0]`,
    );
  });

  it('a key hash in both places is refused, naming both', async () => {
    await writeFile(join(dir, 'secret', 'duph.yaml'), `keys:\n  - { id: b, sha256: ${H('same')}, tenant: t }\n`);
    await writeFile(join(dir, 'duph.yaml'), config('secret/duph.yaml', `[{ id: a, sha256: ${H('same')}, tenant: t }]`));
    const err = (await loadConfigSources(join(dir, 'duph.yaml'), {}).catch((e: unknown) => e)) as ConfigError;
    expect(err.problems).toEqual([
      `keys[0].sha256: duplicate key hash: also in ${join(dir, 'duph.yaml')} at identity.apiKeys[0].sha256`,
    ]);
  });

  it('a keys file that is not there is one line naming the field and the file', async () => {
    await writeFile(join(dir, 'missing.yaml'), config('secret/nope.yaml'));
    const err = await loadConfigSources(join(dir, 'missing.yaml'), {}).catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `${join(dir, 'missing.yaml')}: identity.keysFile: cannot read ${join(dir, 'secret', 'nope.yaml')}: no such file or directory (ENOENT)`,
    );
  });
});
