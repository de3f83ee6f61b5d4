// README's config reference, rendered from the config's JSON Schema: a YAML block an operator can
// read top to bottom and copy from. Every field appears with its description as a comment and
// its default as the value; a field without a default shows the example its schema gives,
// commented out when it is optional. It lives between two marker comments in README.md.
import { stringify } from 'yaml';
import { type JsonSchema, node } from './json-schema.ts';

export const REFERENCE_START = '<!-- config-reference:start -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

/** Comment lines stop here, so the block reads without scrolling sideways. */
const WIDTH = 100;

/** The markdown that goes between the markers. */
export function renderReference(schema: JsonSchema): string {
  const lines: string[] = [];
  renderFields(schema, 0, '', lines);
  return [
    '<!-- Generated from the config schema by `npm run config:docs`; edit extproc/*/config.ts, not this block. -->',
    '```yaml',
    ...lines,
    '```',
  ].join('\n');
}

/** README with the text between the markers replaced by `reference`. */
export function spliceReference(readme: string, reference: string): string {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start === -1 || end < start)
    throw new Error(`README.md needs ${REFERENCE_START} followed by ${REFERENCE_END} where the reference goes`);
  return `${readme.slice(0, start + REFERENCE_START.length)}\n${reference}\n${readme.slice(end)}`;
}

function renderFields(object: JsonSchema, indent: number, where: string, lines: string[], listItem = false): void {
  const pad = ' '.repeat(indent);
  Object.entries(object.properties ?? {}).forEach(([key, value], i) => {
    const path = where ? `${where}.${key}` : key;
    const field = node(value, path);
    // A section reads well without a description of its own; a field an operator sets does not.
    if (!field.description && !field.properties)
      throw new Error(`${path}: every field needs a description (.describe() in its schema)`);
    // A blank line between fields, none after a section or list header: each comment reads as
    // belonging to the line below it.
    if (i > 0) lines.push('');
    const required = object.required?.includes(key) ?? false;
    const items = field.type === 'array' && field.items !== undefined ? node(field.items, `${path}[]`) : undefined;
    let note = '';
    if (items?.properties && 'default' in field) note = ` Default: ${flow(field.default)}; an example entry follows.`;
    else if (!('default' in field) && !field.properties) note = required ? ' Required.' : ' Optional.';
    // The first field of a list entry carries the "- ", and its comment sits at the dash.
    const commentPad = listItem && i === 0 ? ' '.repeat(indent - 2) : pad;
    for (const line of wrap(`${field.description ?? ''}${note}`.trim(), WIDTH - commentPad.length - 2))
      lines.push(`${commentPad}# ${line}`);
    const keyPad = listItem && i === 0 ? `${' '.repeat(indent - 2)}- ` : pad;
    if (field.properties) {
      lines.push(`${keyPad}${key}:`);
      renderFields(field, indent + 2, path, lines);
    } else if (items?.properties) {
      lines.push(`${keyPad}${key}:`);
      renderFields(items, indent + 4, `${path}[]`, lines, true);
    } else if ('default' in field) {
      lines.push(`${keyPad}${key}: ${flow(field.default)}${sizeNote(key, field.default)}`);
    } else {
      const example = field.examples?.[0];
      if (example === undefined) throw new Error(`${path}: a field without a default needs an example (.meta())`);
      lines.push(`${required ? keyPad : `${keyPad}# `}${key}: ${flow(example)}`);
    }
  });
}

/** A value as one line of YAML: ["*"], 127.0.0.1:50051, "-". */
function flow(value: unknown): string {
  return stringify(value, { collectionStyle: 'flow', flowCollectionPadding: false, lineWidth: 0 }).trimEnd();
}

/** Byte counts are easier to check as MiB; fields measured in bytes say so in their name. */
function sizeNote(key: string, value: unknown): string {
  if (!key.endsWith('Bytes') || typeof value !== 'number' || value % (1024 * 1024) !== 0) return '';
  return `  # ${value / (1024 * 1024)} MiB`;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}
