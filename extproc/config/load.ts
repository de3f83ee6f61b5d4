// Reading a config file: YAML → ${ENV} interpolation → zod validation, then the keys file it
// names (keys-file.ts), whose keys join the config's. Every error names the file, the path of
// the offending field and what is wrong, so `lm-gate check-config` and a rejected hot reload say
// exactly what to fix.
import { readFile } from 'node:fs/promises';
import { ConfigError, systemErrorText } from './config-error.ts';
import { describeIssue } from './issues.ts';
import { keysFilePath, parseKeysFile, withFileKeys } from './keys-file.ts';
import { type Config, configSchema } from './schema.ts';
import { readYaml } from './yaml.ts';

export { ConfigError } from './config-error.ts';

/** ${NAME} and ${NAME:-default}; $${...} escapes a literal "${". Only whole string values are
 * scanned (after YAML parsing), so a secret can never change the document's structure. */
const ENV_REF = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function interpolate(value: unknown, path: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (match, escaped: string | undefined, name: string, fallback: string | undefined) => {
      if (escaped) return match.slice(1);
      const v = env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      problems.push(`${path || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, `${path}[${i}]`, env, problems));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, path ? `${path}.${k}` : k, env, problems);
    return out;
  }
  return value;
}

export const EMPTY_FILE = 'the file is empty (or only comments); write {} to run on every default';

/** Parse and validate config text. Throws ConfigError listing every problem. Text with no YAML
 * document at all parses to every default unless `requireDocument` (see parseConfigFile). */
export function parseConfig(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  { requireDocument = false } = {},
): Config {
  const raw = readYaml(text, source);
  if (raw === undefined) {
    if (requireDocument) throw new ConfigError(source, [EMPTY_FILE]);
    return parseValue({}, source, env);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(source, ['(root): expected a mapping']);
  return parseValue(raw, source, env);
}

/** A config file's text. A file with no document is refused rather than read as "every
 * default": it is a wrong path, a truncated write, or an editor's save caught half-way by the
 * reload watcher far more often than a wish, and the defaults have no API keys. `{}` says it. */
export function parseConfigFile(text: string, path: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(text, path, env, { requireDocument: true });
}

function parseValue(raw: object, source: string, env: NodeJS.ProcessEnv): Config {
  const problems: string[] = [];
  const interpolated = interpolate(raw, '', env, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) throw new ConfigError(source, result.error.issues.map(describeIssue));
  return result.data;
}

/** A config as loaded from its files: the config (with the keys file's keys joined to its own),
 * the keys file's path, and the text of both, which the reload watcher compares. */
export interface LoadedConfig {
  config: Config;
  keysFile: string | undefined;
  /** How many of config.identity.apiKeys came from the keys file (the last ones). */
  keysFromFile: number;
  /** The config file's text and the keys file's, as read. */
  texts: readonly [string, string | undefined];
}

/** Reads a config file and the keys file it names, validates both and joins their keys. */
export async function loadConfigSources(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw ConfigError.unreadable(path, err);
  }
  const config = parseConfigFile(text, path, env);
  const keysFile = keysFilePath(path, config);
  if (keysFile === undefined) return { config, keysFile, keysFromFile: 0, texts: [text, undefined] };
  let keysText: string;
  try {
    keysText = await readFile(keysFile, 'utf8');
  } catch (err) {
    throw keysFileUnreadable(path, keysFile, err);
  }
  const joined = joinKeysFile(config, path, keysFile, keysText);
  return {
    config: joined,
    keysFile,
    keysFromFile: joined.identity.apiKeys.length - config.identity.apiKeys.length,
    texts: [text, keysText],
  };
}

/** The config with the keys of the keys file whose text is `keysText` joined to its own. */
export function joinKeysFile(config: Config, path: string, keysFile: string, keysText: string): Config {
  return withFileKeys(config, path, parseKeysFile(keysText, keysFile), keysFile);
}

/** One line naming the config field and the file: the config is fine, its keys file is not
 * there (a Secret not mounted, a wrong path). */
export function keysFileUnreadable(path: string, keysFile: string, err: unknown): ConfigError {
  const problem = `identity.keysFile: cannot read ${keysFile}: ${systemErrorText(err)}`;
  return new ConfigError(path, [problem], `${path}: ${problem}`);
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  return (await loadConfigSources(path, env)).config;
}
