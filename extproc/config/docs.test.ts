// The config docs are generated from the schema (npm run config:docs) and checked in; this fails
// when a schema change was not followed by regenerating them, and proves what they promise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { CONFIG_DOCS_COMMAND, configDocs } from './docs.ts';
import { configFields, editorJsonSchema } from './json-schema.ts';
import { REFERENCE_END, REFERENCE_START } from './reference.ts';
import { configSchema } from './schema.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('generated config docs', () => {
  for (const file of configDocs(read('README.md'))) {
    it(`${file.path} matches the schema`, () => {
      expect(read(file.path), `${file.path} is out of date with the config schema: run ${CONFIG_DOCS_COMMAND}`).toBe(
        file.content,
      );
    });
  }

  it('every field an operator can set is described', () => {
    // Sections may go without: a section is read through its fields.
    const undescribed = configFields().filter((f) => !f.schema.properties && !f.schema.description);
    expect(undescribed.map((f) => f.path)).toEqual([]);
  });

  it("README's reference block is a config the schema accepts once its example key has a hash", () => {
    const readme = read('README.md');
    const block = readme.slice(readme.indexOf(REFERENCE_START), readme.indexOf(REFERENCE_END));
    const yaml = block.split('```yaml\n')[1]!.split('```')[0]!;
    const doc = parse(yaml.replace('<sha256 printed by lm-gate keys create>', 'a'.repeat(64)));
    expect(configSchema.safeParse(doc).error?.issues ?? []).toEqual([]);
  });
});

describe('the editor JSON Schema', () => {
  const editor = z.fromJSONSchema(editorJsonSchema());
  const example = parse(read('examples/lm-gate.yaml'));

  it('accepts examples/lm-gate.yaml as written, ${ENV} references included', () => {
    expect(JSON.stringify(example)).toContain('${');
    expect(editor.safeParse(example).error?.issues ?? []).toEqual([]);
  });

  it('flags what check-config refuses, and takes an ${ENV} reference where check-config does', () => {
    expect(editor.safeParse({ servr: {} }).success).toBe(false);
    expect(editor.safeParse({ server: { grpcAddress: 'localhost' } }).success).toBe(false);
    expect(editor.safeParse({ logging: { level: 'loud' } }).success).toBe(false);
    expect(editor.safeParse({ server: { drainTimeoutMs: '${DRAIN_MS}' } }).success).toBe(false);
    expect(editor.safeParse({ logging: { level: '${LOG_LEVEL:-info}' } }).success).toBe(true);
  });
});
