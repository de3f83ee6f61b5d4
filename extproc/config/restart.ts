// Fields a hot reload cannot apply: the listeners and the audit file are opened at start.
// A reload that changes them is still applied for everything else, and says which of its
// changes wait for a restart, so an operator is never left guessing.
import { isDeepStrictEqual } from 'node:util';
import type { Config } from './schema.ts';

export const RESTART_ONLY = {
  server: ['grpcAddress', 'unixSocket', 'adminAddress', 'workers', 'parseWorkers'],
  audit: [
    'path',
    'maxPendingBytes',
    'maxRefusalBytes',
    'durability',
    'fsyncIntervalMs',
    'rotateBytes',
    'rotateMs',
    'checkpointRecords',
    'checkpointMs',
    'signingKey',
    'capture.path',
  ],
  killSwitch: ['resyncIntervalMs', 'maxEntries'],
  limits: ['store', 'maxMemoryEntries', 'webhook'],
  redis: ['url', 'sentinel', 'cluster', 'username', 'password', 'keyPrefix', 'connectTimeoutMs', 'commandTimeoutMs'],
} as const;

/** Dotted paths of fields that differ between the two configs and need a restart. */
export function restartRequired(current: Config, next: Config): string[] {
  const out: string[] = [];
  for (const [section, fields] of Object.entries(RESTART_ONLY) as [keyof typeof RESTART_ONLY, readonly string[]][]) {
    for (const f of fields) {
      // An optional section (redis) may be absent on either side.
      const a = at(current[section], f);
      const b = at(next[section], f);
      if (!isDeepStrictEqual(a, b)) out.push(`${section}.${f}`);
    }
  }
  return out;
}

/** The value at a dotted path under `o` (a field of a nested section: capture.path). */
function at(o: unknown, path: string): unknown {
  let v = o;
  for (const key of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[key];
  return v;
}
