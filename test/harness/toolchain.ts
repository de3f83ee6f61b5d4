// The pinned toolchain versions (scripts/toolchain.env), read by the harness and the bench.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './envoy.ts';

export function toolchain(): Record<string, string> {
  const text = readFileSync(join(ROOT, 'scripts', 'toolchain.env'), 'utf8');
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
