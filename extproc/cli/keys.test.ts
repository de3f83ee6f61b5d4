// `lm-gate keys create|list|revoke|rotate` on a keys file, run in-process with a fixed clock:
// what each writes, that the key it prints is the one the gate will accept, that nothing but the
// printed key ever shows a secret, and that edits are atomic, keep the file's mode and comments,
// and refuse to run beside another edit rather than lose it. Exit codes and one-line errors, as
// a user meets them, are in extproc/main.test.ts.
import { chmod, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parseKeysFile } from '../config/keys-file.ts';
import type { ApiKeyConfig } from '../config/schema.ts';
import { createApiKeyAuthenticator } from '../identity/api-key-authenticator.ts';
import { apiKeyId, hashApiKey } from '../identity/api-keys.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { keysCommand } from './keys.ts';
import { CommandError } from './usage.ts';

const NOW = Date.parse('2026-03-01T00:00:00Z');
const DAY = 86_400_000;
let dir: string;
let file: string;
let seq = 0;

beforeEach(async () => {
  dir ??= await mkdtemp(join(tmpdir(), 'lmg-keys-cli-'));
  file = join(dir, `keys-${++seq}.yaml`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function keys(args: string[], now = NOW): Promise<Ran> {
  let out = '';
  let err = '';
  const code = await keysCommand(args, {
    output: { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) },
    now: () => now,
  });
  return { code, out, err };
}

const create = (id: string, ...more: string[]) =>
  keys(['create', '--file', file, '--id', id, '--tenant', 'acme', ...more]);
const entries = async (path = file): Promise<ApiKeyConfig[]> => parseKeysFile(await readFile(path, 'utf8'), path);

/** Whether the gate, built from the file as it is now, accepts `key` at time `now`. */
async function accepted(key: string, now = NOW): Promise<boolean> {
  const auth = createApiKeyAuthenticator(await entries(), { now: () => now });
  try {
    auth.authenticate(key, { decide: () => {} } as unknown as RequestContext);
    return true;
  } catch {
    return false;
  }
}

describe('keys create --file', () => {
  it('prints only the key, once, on stdout; the file gets its hash and the given fields, mode 0600', async () => {
    const r = await create(
      'team-a',
      '--team',
      'research',
      '--models',
      'llama-*, mock-*',
      '--endpoints',
      'openai.chat',
      '--expires',
      '90d',
      '--label',
      'owner=ops',
      '--attribute',
      'department=claims',
      '--roles',
      'analyst',
    );
    expect(r.code).toBe(0);
    const key = r.out.trim();
    expect(r.out).toBe(`${key}\n`);
    expect(apiKeyId(key)).toBe('team-a');
    expect(r.err).toMatch(/added key "team-a" \(tenant acme\)\. The key above is shown only this once/);
    expect(r.err).not.toContain(key.slice(-43));
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(key.slice(-43));
    expect(await entries()).toEqual([
      {
        id: 'team-a',
        sha256: hashApiKey(key),
        tenant: 'acme',
        team: 'research',
        roles: ['analyst'],
        models: ['llama-*', 'mock-*'],
        endpoints: ['openai.chat'],
        attributes: { department: 'claims' },
        expiresAt: new Date(NOW + 90 * DAY).toISOString().replace('.000', ''),
        disabled: false,
        labels: { owner: 'ops' },
      },
    ]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await accepted(key)).toBe(true);
  });

  it('appends to a file, keeping its comments and its mode', async () => {
    await writeFile(file, '# keys of the claims team; ask #platform before editing\nkeys: [] # none yet\n');
    await chmod(file, 0o640);
    const a = (await create('a')).out.trim();
    const b = (await create('b')).out.trim();
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# keys of the claims team; ask #platform before editing');
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect((await entries()).map((k) => k.id)).toEqual(['a', 'b']);
    expect([await accepted(a), await accepted(b)]).toEqual([true, true]);
  });

  it('a JSON keys file stays JSON', async () => {
    file = join(dir, 'keys.json');
    await writeFile(file, '{"keys": []}\n');
    await create('j');
    const text = await readFile(file, 'utf8');
    expect(JSON.parse(text).keys[0].id).toBe('j');
  });

  it('an id the file has already is refused and the file is left as it was', async () => {
    await create('dup');
    const before = await readFile(file, 'utf8');
    await expect(create('dup')).rejects.toThrow(
      `${file}: a key with id "dup" exists already (keys[0]); rotate it, or choose another id`,
    );
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('an invalid keys file is not edited: the problems are reported and the file is left as it was', async () => {
    const bad = `keys:\n  - { id: a, sha256: ${'a'.repeat(64)}, tenant: t, expiresAt: soon }\n`;
    await writeFile(file, bad);
    await expect(create('b')).rejects.toThrow(/invalid keys file\n {2}- keys\[0\]\.expiresAt: /);
    expect(await readFile(file, 'utf8')).toBe(bad);
  });

  it('through a symlink the target is edited and the link stays a link', async () => {
    const target = join(dir, 'real-keys.yaml');
    await writeFile(target, 'keys: []\n');
    file = join(dir, 'link-keys.yaml');
    await symlink(target, file);
    await create('l');
    expect((await entries(target)).map((k) => k.id)).toEqual(['l']);
    expect(await readlink(file)).toBe(target);
  });
});

describe('keys list --file', () => {
  it("shows id, tenant, team, user, state, expiry, the old secret's grace and labels; never a hash", async () => {
    await create('live', '--team', 'claims', '--label', 'owner=ops', '--label', 'ticket=SEC-1');
    await create('gone');
    await keys(['revoke', '--file', file, 'gone']);
    await create('dated', '--expires', '1d');
    await create('rotating');
    await keys(['rotate', '--file', file, 'rotating', '--grace', '7d']);
    const r = await keys(['list', '--file', file], NOW + 2 * DAY);
    expect(r.out.split('\n')).toEqual([
      'ID        TENANT  TEAM    USER  STATE     EXPIRES               OLD SECRET UNTIL      LABELS',
      'live      acme    claims  -     active    -                     -                     owner=ops,ticket=SEC-1',
      'gone      acme    -       -     disabled  -                     -                     -',
      'dated     acme    -       -     expired   2026-03-02T00:00:00Z  -                     -',
      'rotating  acme    -       -     active    -                     2026-03-08T00:00:00Z  -',
      '',
    ]);
    for (const k of await entries()) expect(r.out).not.toContain(k.sha256);
  });
});

describe('keys revoke --file', () => {
  it('disables the key and drops its previous secret; the gate then refuses both', async () => {
    const old = (await create('r')).out.trim();
    const next = (await keys(['rotate', '--file', file, 'r', '--grace', '1d'])).out.trim();
    expect([await accepted(old), await accepted(next)]).toEqual([true, true]);
    const r = await keys(['revoke', '--file', file, 'r']);
    expect(r.out).toBe(`${file}: revoked key "r"; a gate watching the file refuses it from its next reload\n`);
    const [entry] = await entries();
    expect(entry).toMatchObject({ disabled: true });
    expect(entry?.previous).toBeUndefined();
    expect([await accepted(old), await accepted(next)]).toEqual([false, false]);
    expect((await keys(['revoke', '--file', file, 'r'])).out).toBe(`${file}: key "r" was already revoked\n`);
  });
});

describe('keys rotate --file', () => {
  it('without a grace: a new secret for the same id, printed once; the old one stops at once', async () => {
    const old = (await create('svc_batch')).out.trim();
    const r = await keys(['rotate', '--file', file, 'svc_batch']);
    const next = r.out.trim();
    expect(r.out).toBe(`${next}\n`);
    expect(apiKeyId(next)).toBe('svc_batch');
    expect(next).not.toBe(old);
    expect(r.err).toMatch(
      /rotated key "svc_batch": the old secret stops working\. The key above is shown only this once/,
    );
    expect([await accepted(old), await accepted(next)]).toEqual([false, true]);
    expect((await entries())[0]?.previous).toBeUndefined();
  });

  it('with a grace: the old secret keeps working until the grace ends, then only the new one', async () => {
    const old = (await create('g')).out.trim();
    const next = (await keys(['rotate', '--file', file, 'g', '--grace', '7d'])).out.trim();
    expect((await entries())[0]?.previous).toEqual({ sha256: hashApiKey(old), expiresAt: '2026-03-08T00:00:00Z' });
    expect([await accepted(old, NOW + 7 * DAY - 1), await accepted(next, NOW + 7 * DAY - 1)]).toEqual([true, true]);
    expect([await accepted(old, NOW + 7 * DAY), await accepted(next, NOW + 7 * DAY)]).toEqual([false, true]);
  });

  it('rotating again within a grace ends the older grace, and says so', async () => {
    const first = (await create('twice')).out.trim();
    await keys(['rotate', '--file', file, 'twice', '--grace', '7d']);
    const r = await keys(['rotate', '--file', file, 'twice', '--grace', '1d'], NOW + DAY);
    expect(r.err).toContain('the grace of its secret before the last rotation (until 2026-03-08T00:00:00Z) ends now');
    expect(await accepted(first, NOW + DAY)).toBe(false);
  });

  it('a revoked key is not rotated; an expired one only with a new --expires', async () => {
    await create('off');
    await keys(['revoke', '--file', file, 'off']);
    await expect(keys(['rotate', '--file', file, 'off'])).rejects.toThrow(
      `${file}: key "off" is revoked; create a new key instead`,
    );
    await create('late', '--expires', '1d');
    const later = NOW + 2 * DAY;
    await expect(keys(['rotate', '--file', file, 'late'], later)).rejects.toThrow(
      `${file}: key "late" expired at 2026-03-02T00:00:00Z; give --expires for the new secret`,
    );
    const next = (await keys(['rotate', '--file', file, 'late', '--expires', '30d'], later)).out.trim();
    expect(await accepted(next, later)).toBe(true);
  });

  it('an id the file does not have, or a file that does not exist, is refused; no file is made', async () => {
    await create('a');
    await expect(keys(['rotate', '--file', file, 'b'])).rejects.toThrow(`${file}: no key with id "b"`);
    const none = join(dir, 'none.yaml');
    for (const sub of ['rotate', 'revoke'])
      await expect(keys([sub, '--file', none, 'a'])).rejects.toThrow(
        `${none}: no such file; keys create --file makes one`,
      );
    await expect(stat(none)).rejects.toThrow(/ENOENT/);
  });
});

describe('atomic, locked edits', () => {
  it('leave no temporary or lock file behind, after a success and after a refusal', async () => {
    const before = new Set(await readdir(dir));
    await create('clean');
    await expect(create('clean')).rejects.toThrow(CommandError);
    const added = (await readdir(dir)).filter((n) => !before.has(n));
    expect(added).toEqual([file.slice(dir.length + 1)]);
  });

  it('an edit while the lock is held is refused, and the file is left as it was', async () => {
    await create('first');
    const before = await readFile(file, 'utf8');
    await writeFile(`${file}.lock`, '999\n');
    await expect(create('second')).rejects.toThrow(
      `${file}: another command is editing it (${file}.lock exists, left by process 999); try again, or delete the lock file if no such command is running`,
    );
    expect(await readFile(file, 'utf8')).toBe(before);
    // The lock is someone else's: it stays until they (or the operator) remove it.
    expect(await readFile(`${file}.lock`, 'utf8')).toBe('999\n');
    await rm(`${file}.lock`);
  });

  it('concurrent creates never lose an edit: each either lands or is refused', async () => {
    await writeFile(file, 'keys: []\n');
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
    const results = await Promise.allSettled(ids.map((id) => create(id)));
    const landed = ids.filter((_, i) => results[i]!.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
    for (const why of refused) expect(why).toMatch(/another command is editing it/);
    expect(landed.length).toBeGreaterThan(0);
    expect((await entries()).map((k) => k.id).sort()).toEqual(landed.sort());
  });
});
