// node scripts/audit-docs.ts — regenerates docs/audit-record.schema.json and the field table in
// docs/audit.md (between its fields markers) from extproc/audit/record-schema.ts. Run it after
// changing the record; extproc/audit/record-schema.test.ts fails on drift.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditJsonSchema, fieldTable } from '../extproc/audit/record-schema.ts';

export const ROOT = join(import.meta.dirname, '..');
export const BEGIN = '<!-- fields:begin (scripts/audit-docs.ts) -->';
export const END = '<!-- fields:end -->';

export function schemaText(): string {
  return `${JSON.stringify(auditJsonSchema(), null, 2)}\n`;
}

export function withTable(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a === -1 || b === -1) throw new Error(`docs/audit.md lacks the ${BEGIN} … ${END} markers`);
  return `${doc.slice(0, a + BEGIN.length)}\n${fieldTable()}\n${doc.slice(b)}`;
}

if (import.meta.main) {
  await writeFile(join(ROOT, 'docs', 'audit-record.schema.json'), schemaText());
  const md = join(ROOT, 'docs', 'audit.md');
  await writeFile(md, withTable(await readFile(md, 'utf8')));
  console.log('docs/audit-record.schema.json and docs/audit.md field table written');
}
