// The edits `lm-gate keys` makes to a keys file, as pure functions from the file's text to the
// new text. A YAML file is edited as a document, so the comments an operator wrote stay where
// they were; a JSON file is rewritten as JSON. Every result is validated as a whole keys file
// (config/keys-file.ts) before it is returned, so a file the gate would refuse is never written.
import { Document, isMap, isSeq, parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { ConfigError } from '../config/config-error.ts';
import { type KeysFile, parseKeysFile } from '../config/keys-file.ts';
import type { ApiKeyConfig } from '../config/schema.ts';
import { CommandError } from './usage.ts';

/** An entry as written: only the fields given, defaults left to the schema. */
export type KeyEntry = { id: string; sha256: string; tenant: string } & Partial<Omit<ApiKeyConfig, 'id' | 'sha256'>>;

const NEW_FILE_HEADER =
  ' LM Gate API keys (identity.keysFile): edit with `lm-gate keys create|list|revoke|rotate --file`.\n' +
  ' Only SHA-256 hashes of the keys are stored here.';

/** The file's keys, validated; [] for a file that does not exist yet. */
export function readKeys(text: string | undefined, path: string): ApiKeyConfig[] {
  return text === undefined ? [] : parseKeysFile(text, path);
}

/** The text with `entry` appended to its keys. */
export function addKey(text: string | undefined, path: string, entry: KeyEntry): string {
  const keys = readKeys(text, path);
  const clash = keys.findIndex((k) => k.id === entry.id);
  if (clash !== -1)
    throw new CommandError(
      `${path}: a key with id "${entry.id}" exists already (keys[${clash}]); rotate it, or choose another id`,
    );
  return edit(
    text,
    path,
    (file) => file.keys.push(entry),
    (doc) => {
      const seq = keysSeq(doc);
      seq.flow = false;
      seq.items.push(entryNode(doc, entry));
    },
  );
}

/** The text with key `id` disabled and any previous secret dropped. Whether it was already
 * disabled, for the message. */
export function revokeKey(text: string | undefined, path: string, id: string): { text: string; already: boolean } {
  const keys = existingKeys(text, path);
  const i = indexOf(keys, path, id);
  const already = keys[i]!.disabled;
  const next = edit(
    text,
    path,
    (file) => {
      const k = file.keys[i] as KeyEntry;
      k.disabled = true;
      delete k.previous;
    },
    (doc) => {
      doc.setIn(['keys', i, 'disabled'], true);
      doc.deleteIn(['keys', i, 'previous']);
    },
  );
  return { text: next, already };
}

/** The text with key `id`'s hash replaced by `sha256`; the old one kept as `previous` until
 * `graceUntil` when given; its expiry changed when `expiresAt` is given. */
export function rotateKey(
  text: string | undefined,
  path: string,
  id: string,
  change: { sha256: string; graceUntil: string | undefined; expiresAt: string | undefined },
): string {
  const keys = existingKeys(text, path);
  const i = indexOf(keys, path, id);
  const old = keys[i]!;
  const previous = change.graceUntil === undefined ? undefined : { sha256: old.sha256, expiresAt: change.graceUntil };
  return edit(
    text,
    path,
    (file) => {
      const k = file.keys[i] as KeyEntry;
      k.sha256 = change.sha256;
      if (previous) k.previous = previous;
      else delete k.previous;
      if (change.expiresAt !== undefined) k.expiresAt = change.expiresAt;
    },
    (doc) => {
      doc.setIn(['keys', i, 'sha256'], change.sha256);
      if (previous) doc.setIn(['keys', i, 'previous'], doc.createNode(previous, { flow: false }));
      else doc.deleteIn(['keys', i, 'previous']);
      if (change.expiresAt !== undefined) doc.setIn(['keys', i, 'expiresAt'], change.expiresAt);
    },
  );
}

/** The keys of a file that must exist already (revoke, rotate). */
export function existingKeys(text: string | undefined, path: string): ApiKeyConfig[] {
  if (text === undefined) throw new CommandError(`${path}: no such file; keys create --file makes one`);
  return parseKeysFile(text, path);
}

function indexOf(keys: readonly ApiKeyConfig[], path: string, id: string): number {
  const i = keys.findIndex((k) => k.id === id);
  if (i === -1) throw new CommandError(`${path}: no key with id "${id}"`);
  return i;
}

/** JSON: `json` edits the parsed object, which is written back as JSON. YAML: `yaml` edits the
 * document. Either way the result must read back as a valid keys file. */
function edit(
  text: string | undefined,
  path: string,
  json: (file: { keys: unknown[] }) => void,
  yaml: (doc: Document) => void,
): string {
  let next: string;
  if (text !== undefined && isJson(text, path)) {
    const file = JSON.parse(text) as KeysFile;
    json(file as { keys: unknown[] });
    next = `${JSON.stringify(file, null, 2)}\n`;
  } else {
    const doc = text === undefined ? newDocument() : parseDocument(text, { uniqueKeys: true });
    yaml(doc);
    next = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
  }
  try {
    parseKeysFile(next, path);
  } catch (err) {
    // Only a value given on the command line can make a valid file invalid; say which.
    if (err instanceof ConfigError)
      throw new CommandError(`${path}: the edit would make the file invalid: ${err.problems.join('; ')}`);
    throw err;
  }
  return next;
}

/** A keys file written as JSON stays JSON: by its name, or by its text when the name says neither. */
function isJson(text: string, path: string): boolean {
  if (/\.json$/i.test(path)) return true;
  if (/\.ya?ml$/i.test(path)) return false;
  return text.trimStart().startsWith('{');
}

function newDocument(): Document {
  const doc = new Document({ keys: [] });
  doc.commentBefore = NEW_FILE_HEADER;
  return doc;
}

function keysSeq(doc: Document): YAMLSeq {
  const seq = doc.get('keys', true);
  if (!isSeq(seq)) throw new CommandError('the keys file has no keys list');
  return seq;
}

/** An entry in block style, with its lists and maps on one line each (models: ["llama-*"]). */
function entryNode(doc: Document, entry: KeyEntry): YAMLMap {
  const node = doc.createNode(entry, { flow: false }) as YAMLMap;
  for (const pair of node.items) if (isSeq(pair.value) || isMap(pair.value)) pair.value.flow = true;
  return node;
}
