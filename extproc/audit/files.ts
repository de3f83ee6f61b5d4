// The audit files on disk: the active file at audit.path, and rotated files renamed beside it as
// PATH.<seq of their first line, 12 digits>-<UTC time of rotation>, so that sorting their names
// sorts them in chain order.
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const ROTATED = /^\.(\d{12})-(\d{8}T\d{6}Z)$/;

export function rotatedName(path: string, firstSeq: number, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  return `${path}.${String(firstSeq).padStart(12, '0')}-${stamp}`;
}

/** The rotated files of `path`, oldest first. */
export async function rotatedFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(base) && ROTATED.test(n.slice(base.length)))
    .sort()
    .map((n) => join(dir, n));
}
