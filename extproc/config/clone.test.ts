// `serve` validates its config in a short-lived child process (load-in-child.ts) and takes the
// result across by structured clone (IPC's advanced serialization), so zod never loads in the
// serving gate. That only works while a validated config is plain data: a function in it throws
// DataCloneError, a class instance (a Map, a RegExp, a compiled matcher built by a zod transform)
// arrives without its prototype. Whatever the config needs compiled is built where it is used,
// after loading.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigSources } from './load.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PROFILES = join(ROOT, 'bench', 'profiles');
const FILES = [
  join(ROOT, 'examples', 'lm-gate.yaml'),
  ...readdirSync(PROFILES)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(PROFILES, f)),
];
/** What the bench profiles' ${ENV} references are set to when the benches start a gate. */
const ENV = {
  LMG_GRPC_PORT: '50051',
  LMG_ADMIN_PORT: '9901',
  LMG_AUDIT_PATH: '/tmp/audit.log',
  LMG_BENCH_KEY_SHA256: 'a'.repeat(64),
  LMG_JWT_ISSUER: 'https://idp.example.com',
  LMG_JWT_JWKS_URI: 'https://idp.example.com/jwks',
};

/** Paths of values that are neither primitives nor plain objects and arrays. */
function notPlain(value: unknown, path = '(root)'): string[] {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return [];
  if (typeof value === 'function') return [path];
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) return value.flatMap((v, i) => notPlain(v, `${path}[${i}]`));
  if (proto !== Object.prototype && proto !== null) return [path];
  return Object.entries(value).flatMap(([k, v]) => notPlain(v, `${path}.${k}`));
}

describe('a validated config is structured-clone safe', () => {
  it.each(FILES.map((f) => [f.slice(ROOT.length + 1), f]))('%s', async (_name, file) => {
    const loaded = await loadConfigSources(file, ENV);
    expect(notPlain(loaded)).toEqual([]);
    expect(structuredClone(loaded)).toStrictEqual(loaded);
  });

  it('catches what a clone would lose', () => {
    expect(notPlain({ a: [{ b: /x/ }], c: new Map(), d: () => 1 })).toEqual(['(root).a[0].b', '(root).c', '(root).d']);
  });
});
