// Editing a file that a running gate reads (the keys file) so that it never sees half of one:
// the new text goes to a temporary file in the same directory (so the rename stays on one file
// system), is fsynced, and replaces the file by rename, which readers see whole or not at all;
// the directory is fsynced too, so the rename survives a crash. The file keeps its mode and,
// where the caller may, its owner; a new file is 0600, since it holds credentials' hashes.
//
// Two edits at once would each read the old text and the second rename would drop the first
// one's change. A lock file beside it, created with O_EXCL, makes the second edit fail instead,
// saying so; a lock left by a command that was killed is removed by hand (the message says so).
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { systemErrorText } from '../config/config-error.ts';
import { CommandError } from './usage.ts';

export const NEW_FILE_MODE = 0o600;

/** Reads `path` (undefined when it does not exist), lets `edit` compute the new text from it,
 * and writes that text atomically, all under the file's lock. `edit` may throw to leave the file
 * as it was. Returns what `edit` returned beside the text. */
export async function editFileAtomically<T>(
  path: string,
  edit: (text: string | undefined) => Promise<{ text: string; result: T }> | { text: string; result: T },
): Promise<T> {
  // Through a symlink, the file it points to is edited and the link stays.
  const target = await realpath(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return path;
    throw new CommandError(`${path}: ${systemErrorText(err)}`);
  });
  const lock = `${target}.lock`;
  const release = await acquireLock(path, lock);
  try {
    const before = await stat(target).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new CommandError(`${path}: ${systemErrorText(err)}`);
    });
    const text = before === undefined ? undefined : await readFile(target, 'utf8');
    const { text: next, result } = await edit(text);
    await replaceFile(target, next, before);
    return result;
  } finally {
    await release();
  }
}

async function acquireLock(path: string, lock: string): Promise<() => Promise<void>> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lock, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, NEW_FILE_MODE);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'EEXIST')
      throw new CommandError(`${path}: cannot create the lock file ${lock}: ${systemErrorText(e)}`);
    const holder = await readFile(lock, 'utf8').catch(() => '');
    const pid = /^\d+/.exec(holder)?.[0];
    throw new CommandError(
      `${path}: another command is editing it (${lock} exists${pid ? `, left by process ${pid}` : ''}); try again, or delete the lock file if no such command is running`,
    );
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
  } finally {
    await handle.close();
  }
  return () => unlink(lock).catch(() => {});
}

async function replaceFile(target: string, text: string, before: Stats | undefined): Promise<void> {
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = before === undefined ? NEW_FILE_MODE : before.mode & 0o7777;
  try {
    const fh = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
    try {
      await fh.writeFile(text);
      // The umask narrowed the mode open() was given; the file gets exactly the old one.
      await fh.chmod(mode);
      if (before !== undefined && (before.uid !== process.getuid?.() || before.gid !== process.getgid?.()))
        // Root editing another user's file keeps it theirs; anyone else cannot, and need not.
        await fh.chown(before.uid, before.gid).catch(() => {});
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw new CommandError(`${target}: cannot write: ${systemErrorText(err)}`);
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
