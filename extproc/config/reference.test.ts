// README's config reference must name every field the schema accepts: the schema is the
// source of truth and the README must not fall behind it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from './schema.ts';

type Node = { def?: { type?: string; innerType?: Node; element?: Node; in?: Node }; shape?: Record<string, Node> };

/** Dotted paths of every field, unwrapping defaults, optionals and arrays. */
function fields(schema: Node, prefix = ''): string[] {
  let s: Node = schema;
  for (;;) {
    const d = s.def;
    if (d?.innerType) s = d.innerType;
    else if (d?.type === 'array' && d.element) s = d.element;
    else if (d?.type === 'pipe' && d.in) s = d.in;
    else break;
  }
  if (!s.shape) return [];
  return Object.entries(s.shape).flatMap(([k, v]) => [prefix + k, ...fields(v, `${prefix}${k}.`)]);
}

describe('README config reference', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const block = readme.split('## Configuration reference')[1]?.split('```yaml')[1]?.split('```')[0] ?? '';
  const all = fields(configSchema as unknown as Node);

  it('walks the schema', () => {
    expect(all).toEqual(
      expect.arrayContaining(['server.grpcAddress', 'identity.apiKeys.sha256', 'audit.maxPendingBytes']),
    );
  });

  for (const path of all) {
    it(`documents ${path}`, () => {
      const leaf = path.split('.').at(-1)!;
      expect(block).toMatch(new RegExp(`^\\s*(- )?${leaf}:`, 'm'));
    });
  }
});
