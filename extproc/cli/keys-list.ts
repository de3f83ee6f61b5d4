// `lm-gate keys list`: one line per key, what an operator needs to review a keys file, and
// never a secret (the file holds none) nor a hash (of no use to a reader, and it is how a key
// is recognised).
import type { ApiKeyConfig } from '../config/schema.ts';

export type KeyState = 'active' | 'disabled' | 'expired';

export function keyState(key: ApiKeyConfig, now: number): KeyState {
  if (key.disabled) return 'disabled';
  if (key.expiresAt !== undefined && Date.parse(key.expiresAt) <= now) return 'expired';
  return 'active';
}

const HEADER = ['ID', 'TENANT', 'TEAM', 'USER', 'STATE', 'EXPIRES', 'OLD SECRET UNTIL', 'LABELS'];

/** A table with a header, columns padded to their widest cell; "-" for what is unset. */
export function renderKeyList(keys: readonly ApiKeyConfig[], now: number): string {
  const rows = keys.map((k) => {
    const state = keyState(k, now);
    // The previous secret is accepted only while the key itself is, and until its own end.
    const grace =
      k.previous !== undefined && state === 'active' && Date.parse(k.previous.expiresAt) > now
        ? k.previous.expiresAt
        : '-';
    const labels = Object.entries(k.labels)
      .map(([name, value]) => `${name}=${value}`)
      .join(',');
    return [k.id, k.tenant, k.team ?? '-', k.user ?? '-', state, k.expiresAt ?? '-', grace, labels || '-'];
  });
  const table = [HEADER, ...rows];
  const widths = HEADER.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  return table
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '))
    .join('\n');
}
