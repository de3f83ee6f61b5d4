// `lm-gate keys create|list|revoke|rotate`: API keys for a keys file (identity.keysFile), or,
// for `create` without --file, the entry to paste into the config. A key is printed exactly once,
// when it is made (create, rotate): alone on stdout, so `KEY=$(lm-gate keys create ...)` works,
// with what happened on stderr. Only its SHA-256 is ever written down. Edits are atomic and
// locked (atomic-file.ts) and validated as a whole file before they are written.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { ConfigError } from '../config/config-error.ts';
import { describeIssue } from '../config/issues.ts';
import { parseKeysFile } from '../config/keys-file.ts';
import { generateApiKey, hashApiKey, KEY_ID_PATTERN } from '../identity/api-keys.ts';
import { apiKeyConfig } from '../identity/config.ts';
import { editFileAtomically } from './atomic-file.ts';
import { parseDuration, parseExpiry, rfc3339At } from './durations.ts';
import { addKey, existingKeys, type KeyEntry, revokeKey, rotateKey } from './keys-file-edit.ts';
import { renderKeyList } from './keys-list.ts';
import { CommandError, parseCommandArgs, UsageError } from './usage.ts';

const CREATE =
  'lm-gate keys create [--file FILE] --id ID --tenant TENANT [--team TEAM] [--user USER] [--roles a,b] [--models a,b] [--endpoints a,b] [--expires 90d|RFC3339] [--label k=v]... [--attribute k=v]...';
const LIST = 'lm-gate keys list --file FILE';
const REVOKE = 'lm-gate keys revoke --file FILE ID';
const ROTATE = 'lm-gate keys rotate --file FILE ID [--grace DURATION] [--expires 90d|RFC3339]';
export const KEYS_USAGE = [CREATE, LIST, REVOKE, ROTATE];

const help = { type: 'boolean', short: 'h' } as const;

/** What a command prints, so tests and main share one path to the terminal. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export interface KeysCommandDeps {
  output: Output;
  now(): number;
}

const systemDeps: KeysCommandDeps = {
  output: { out: (t) => console.log(t), err: (t) => console.error(t) },
  now: () => Date.now(),
};

export async function keysCommand(args: string[], deps: KeysCommandDeps = systemDeps): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create':
      return create(rest, deps);
    case 'list':
      return listKeys(rest, deps);
    case 'revoke':
      return revoke(rest, deps);
    case 'rotate':
      return rotate(rest, deps);
    case '--help':
    case '-h':
      deps.output.out(`usage:\n${KEYS_USAGE.map((u) => `  ${u}`).join('\n')}`);
      return 0;
    default:
      throw new UsageError(
        'lm-gate keys',
        `${sub === undefined ? 'expected' : `unknown subcommand "${sub}"; expected`} one of create, list, revoke, rotate`,
        'lm-gate keys create|list|revoke|rotate (lm-gate keys --help shows their options)',
      );
  }
}

async function create(args: string[], deps: KeysCommandDeps): Promise<number> {
  const cmd = 'lm-gate keys create';
  const { values } = parseCommandArgs(cmd, CREATE, {
    args,
    options: {
      help,
      file: { type: 'string' },
      id: { type: 'string' },
      tenant: { type: 'string' },
      team: { type: 'string' },
      user: { type: 'string' },
      roles: { type: 'string' },
      models: { type: 'string' },
      endpoints: { type: 'string' },
      expires: { type: 'string' },
      label: { type: 'string', multiple: true },
      attribute: { type: 'string', multiple: true },
    },
  });
  if (values.help) return usage(deps, CREATE);
  const file = values.file;
  // A file is shared state: who a key is for must be said. The paste-into-config form keeps its
  // defaults (a random id, tenant "default") for a first try.
  if (file !== undefined && values.id === undefined) throw new UsageError(cmd, '--id is required with --file', CREATE);
  if (file !== undefined && values.tenant === undefined)
    throw new UsageError(cmd, '--tenant is required with --file', CREATE);
  const fail = (problem: string) => new UsageError(cmd, problem, CREATE);
  const id = values.id ?? `key-${randomBytes(4).toString('hex')}`;
  if (!KEY_ID_PATTERN.test(id)) throw fail(`--id: key ids are 1-64 characters of A-Z a-z 0-9 . _ -, not "${id}"`);
  const entry: Omit<KeyEntry, 'sha256'> = { id, tenant: values.tenant ?? 'default' };
  if (values.team !== undefined) entry.team = values.team;
  if (values.user !== undefined) entry.user = values.user;
  if (values.roles !== undefined) entry.roles = splitList(values.roles);
  if (values.models !== undefined) entry.models = splitList(values.models);
  if (values.endpoints !== undefined) entry.endpoints = splitList(values.endpoints) as KeyEntry['endpoints'];
  if (values.expires !== undefined) {
    const expiry = parseExpiry(values.expires, deps.now());
    if ('problem' in expiry) throw fail(`--expires: ${expiry.problem}`);
    entry.expiresAt = expiry.at;
  }
  if (values.attribute !== undefined) entry.attributes = pairs('--attribute', values.attribute, fail);
  if (values.label !== undefined) entry.labels = pairs('--label', values.label, fail);
  checkEntry(entry, fail);

  const key = generateApiKey(id);
  const full = inSchemaOrder({ ...entry, sha256: hashApiKey(key) });
  if (file === undefined) {
    // Shown with its lists, defaults included, so the pasted entry says what the key may do.
    const shown = inSchemaOrder({ models: ['*'], endpoints: ['*'], ...full });
    deps.output.out(`API key (shown once, store it now): ${key}

Paste under identity.apiKeys in the config:
${entryYaml(shown)}`);
    return 0;
  }
  await editFileAtomically(file, (text) => ({ text: addKey(text, file, full), result: undefined }));
  deps.output.out(key);
  deps.output.err(
    `${file}: added key "${id}" (tenant ${full.tenant}). The key above is shown only this once: hand it to its holder now.`,
  );
  return 0;
}

async function listKeys(args: string[], deps: KeysCommandDeps): Promise<number> {
  const cmd = 'lm-gate keys list';
  const { values } = parseCommandArgs(cmd, LIST, { args, options: { help, file: { type: 'string' } } });
  if (values.help) return usage(deps, LIST);
  if (values.file === undefined) throw new UsageError(cmd, '--file FILE is required', LIST);
  let text: string;
  try {
    text = await readFile(values.file, 'utf8');
  } catch (err) {
    throw ConfigError.unreadable(values.file, err);
  }
  deps.output.out(renderKeyList(parseKeysFile(text, values.file), deps.now()));
  return 0;
}

async function revoke(args: string[], deps: KeysCommandDeps): Promise<number> {
  const cmd = 'lm-gate keys revoke';
  const { values, positionals } = parseCommandArgs(cmd, REVOKE, {
    args,
    allowPositionals: true,
    options: { help, file: { type: 'string' } },
  });
  if (values.help) return usage(deps, REVOKE);
  const { file, id } = fileAndId(cmd, REVOKE, values.file, positionals);
  const already = await editFileAtomically(file, (text) => {
    const r = revokeKey(text, file, id);
    return { text: r.text, result: r.already };
  });
  deps.output.out(
    already
      ? `${file}: key "${id}" was already revoked`
      : `${file}: revoked key "${id}"; a gate watching the file refuses it from its next reload`,
  );
  return 0;
}

async function rotate(args: string[], deps: KeysCommandDeps): Promise<number> {
  const cmd = 'lm-gate keys rotate';
  const { values, positionals } = parseCommandArgs(cmd, ROTATE, {
    args,
    allowPositionals: true,
    options: { help, file: { type: 'string' }, grace: { type: 'string' }, expires: { type: 'string' } },
  });
  if (values.help) return usage(deps, ROTATE);
  const { file, id } = fileAndId(cmd, ROTATE, values.file, positionals);
  const now = deps.now();
  let graceUntil: string | undefined;
  if (values.grace !== undefined) {
    const ms = parseDuration(values.grace);
    if (ms === undefined)
      throw new UsageError(cmd, `--grace: "${values.grace}" is not a duration (7d, 12h, 30m, 2w)`, ROTATE);
    graceUntil = rfc3339At(now + ms);
  }
  let expiresAt: string | undefined;
  if (values.expires !== undefined) {
    const expiry = parseExpiry(values.expires, now);
    if ('problem' in expiry) throw new UsageError(cmd, `--expires: ${expiry.problem}`, ROTATE);
    expiresAt = expiry.at;
  }
  const key = generateApiKey(id);
  const notes = await editFileAtomically(file, (text) => {
    const current = existingKeys(text, file).find((k) => k.id === id);
    const notes: string[] = [];
    if (current?.disabled) throw new CommandError(`${file}: key "${id}" is revoked; create a new key instead`);
    if (current?.expiresAt !== undefined && Date.parse(current.expiresAt) <= now && expiresAt === undefined)
      throw new CommandError(`${file}: key "${id}" expired at ${current.expiresAt}; give --expires for the new secret`);
    if (current?.previous !== undefined && Date.parse(current.previous.expiresAt) > now)
      notes.push(`the grace of its secret before the last rotation (until ${current.previous.expiresAt}) ends now`);
    return { text: rotateKey(text, file, id, { sha256: hashApiKey(key), graceUntil, expiresAt }), result: notes };
  });
  deps.output.out(key);
  const grace = graceUntil ? `the old secret keeps working until ${graceUntil}` : 'the old secret stops working';
  deps.output.err(
    `${file}: rotated key "${id}": ${grace}${notes.map((n) => `; ${n}`).join('')}. The key above is shown only this once: hand it to its holder now.`,
  );
  return 0;
}

function usage(deps: KeysCommandDeps, text: string): number {
  deps.output.out(`usage: ${text}`);
  return 0;
}

function fileAndId(
  cmd: string,
  usageText: string,
  file: string | undefined,
  positionals: string[],
): { file: string; id: string } {
  if (file === undefined) throw new UsageError(cmd, '--file FILE is required', usageText);
  if (positionals.length !== 1) throw new UsageError(cmd, 'one key ID is required', usageText);
  return { file, id: positionals[0]! };
}

/** "a, b,c" as ["a", "b", "c"]. */
function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** Repeated k=v options as a map; a repeated name is a mistake, not an override. */
function pairs(option: string, given: string[], fail: (problem: string) => UsageError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of given) {
    const eq = p.indexOf('=');
    if (eq < 1) throw fail(`${option}: expected NAME=VALUE, not "${p}"`);
    const name = p.slice(0, eq);
    if (Object.hasOwn(out, name)) throw fail(`${option}: "${name}" given twice`);
    out[name] = p.slice(eq + 1);
  }
  return out;
}

/** The option each entry field comes from, for messages. */
const OPTION: Record<string, string> = {
  id: '--id',
  tenant: '--tenant',
  team: '--team',
  user: '--user',
  roles: '--roles',
  models: '--models',
  endpoints: '--endpoints',
  expiresAt: '--expires',
  labels: '--label',
  attributes: '--attribute',
};

/** The entry checked by the config's own schema, so the command refuses what the gate would
 * (an endpoint name that does not exist, an empty team), naming the option. */
function checkEntry(entry: Omit<KeyEntry, 'sha256'>, fail: (problem: string) => UsageError): void {
  const result = apiKeyConfig.safeParse({ ...entry, sha256: '0'.repeat(64) });
  if (result.success) return;
  const issue = result.error.issues[0]!;
  const [field, index] = issue.path;
  // "--endpoints: "openai.chatt": expected one of ...": the option, the value, what it may be.
  const given = (entry as Record<string, unknown>)[String(field)];
  const value = typeof index === 'number' && Array.isArray(given) ? `${JSON.stringify(given[index])}: ` : '';
  const what = describeIssue({ ...issue, path: [] }).replace(/^\(root\): /, '');
  throw fail(`${OPTION[String(field)] ?? String(field)}: ${value}${what}`);
}

/** The entry's fields in the order the schema (and the config reference) lists them. */
function inSchemaOrder<T extends object>(entry: T): T {
  const order = Object.keys(apiKeyConfig.shape);
  return Object.fromEntries(Object.entries(entry).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))) as T;
}

/** A config entry as YAML, indented under a list item, lists and maps on one line each. */
function entryYaml(entry: Record<string, unknown>): string {
  const flow = (v: unknown) =>
    stringify(v, { collectionStyle: 'flow', flowCollectionPadding: false, lineWidth: 0 }).trimEnd();
  return Object.entries(entry)
    .map(([k, v], i) => `    ${i === 0 ? '- ' : '  '}${k}: ${flow(v)}`)
    .join('\n');
}
