// The files generated from the config schema, shared by `npm run config:docs`, which writes them,
// and the unit test that fails when the checked-in copies drift from the schema.
import { configJsonSchema, editorJsonSchema } from './json-schema.ts';
import { renderReference, spliceReference } from './reference.ts';

export const CONFIG_DOCS_COMMAND = 'npm run config:docs';

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

/** What README.md (given as it is now: only the reference block is generated) and
 * docs/lm-gate.schema.json should contain. */
export function configDocs(readme: string): GeneratedFile[] {
  return [
    { path: 'README.md', content: spliceReference(readme, renderReference(configJsonSchema())) },
    { path: 'docs/lm-gate.schema.json', content: `${JSON.stringify(editorJsonSchema(), null, 2)}\n` },
  ];
}
