// The config schema as JSON Schema, derived from the zod schema so the two cannot disagree:
// the README reference is rendered from it, and docs/lm-gate.schema.json gives editors
// completion, hover text and red squiggles for an lm-gate.yaml.
import { z } from 'zod';
import { configSchema } from './schema.ts';

export type JsonSchema = z.core.JSONSchema.JSONSchema;

/** The input side: what a config file may say, so a field with a default is optional. */
export function configJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema, { io: 'input' });
}

/** A node of a schema zod produced. zod writes `true`/`false` only for additionalProperties and
 * tuples only for z.tuple, neither of which the config has; anything else means zod changed
 * under us. */
export function node(s: JsonSchema['items'], where: string): JsonSchema {
  if (s === undefined || typeof s === 'boolean' || Array.isArray(s))
    throw new Error(`${where}: expected a schema object`);
  return s;
}

export interface Field {
  /** Dotted, with [] for the entries of a list: identity.apiKeys[].id */
  path: string;
  key: string;
  schema: JsonSchema;
}

/** Every field at every depth: sections, their fields, and the fields of list entries. */
export function configFields(schema: JsonSchema = configJsonSchema(), prefix = ''): Field[] {
  return Object.entries(schema.properties ?? {}).flatMap(([key, value]) => {
    const path = prefix + key;
    const field = node(value, path);
    const items = field.items === undefined ? undefined : node(field.items, `${path}[]`);
    return [
      { path, key, schema: field },
      ...(field.properties ? configFields(field, `${path}.`) : []),
      ...(items?.properties ? configFields(items, `${path}[].`) : []),
    ];
  });
}

/** load.ts replaces ${NAME} and ${NAME:-default} inside string values before validating, so in
 * the file an address or a log level may be a reference the editor cannot resolve. */
const ENV_REFERENCE_SCHEMA: JsonSchema = {
  type: 'string',
  pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal syntax load.ts reads
  description: 'Read from the environment when the config is loaded: ${NAME}, or ${NAME:-default} when NAME is unset.',
};

const ENV_REFERENCE: JsonSchema = { $ref: '#/$defs/envReference' };

const STRING_CONSTRAINTS = ['pattern', 'enum', 'const', 'format'] as const;

function constrainsString(s: JsonSchema): boolean {
  return s.type === 'string' && STRING_CONSTRAINTS.some((k) => k in s);
}

/** Lets every constrained string also be an ${ENV} reference, so the editor does not flag what
 * check-config accepts. Plain strings accept a reference already; numbers and booleans cannot be
 * one (the value would reach validation as a string), and stay as they are. Annotations stay on
 * the field itself, where editors look for them. */
function allowEnvReferences(s: JsonSchema, where: string): JsonSchema {
  if (s.anyOf?.every(constrainsString)) return { ...s, anyOf: [...s.anyOf, ENV_REFERENCE] };
  if (constrainsString(s)) {
    const { title, description, default: def, examples, ...value } = s;
    const annotations = Object.entries({ title, description, default: def, examples }).filter(
      ([, v]) => v !== undefined,
    );
    return { ...Object.fromEntries(annotations), anyOf: [value, ENV_REFERENCE] };
  }
  const out: JsonSchema = { ...s };
  if (s.properties)
    out.properties = Object.fromEntries(
      Object.entries(s.properties).map(([k, v]) => [k, allowEnvReferences(node(v, `${where}.${k}`), `${where}.${k}`)]),
    );
  if (s.items !== undefined) out.items = allowEnvReferences(node(s.items, `${where}[]`), `${where}[]`);
  if (s.anyOf) out.anyOf = s.anyOf.map((v, i) => allowEnvReferences(v, `${where}|${i}`));
  return out;
}

/** docs/lm-gate.schema.json: what an editor validates an lm-gate.yaml against. */
export function editorJsonSchema(): JsonSchema {
  const { $schema, ...rest } = allowEnvReferences(configJsonSchema(), '(root)');
  return {
    $schema,
    $comment: 'Generated from the zod schema by `npm run config:docs`; edit extproc/*/config.ts, not this file.',
    title: 'LM Gate configuration (lm-gate.yaml)',
    ...rest,
    $defs: { envReference: ENV_REFERENCE_SCHEMA },
  };
}
