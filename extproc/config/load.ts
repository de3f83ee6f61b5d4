// Reading a config file: YAML → ${ENV} interpolation → zod validation. Every error names the
// path of the offending field and what is wrong, so `lm-gate check-config` and a rejected hot
// reload say exactly what to fix.
import { readFile } from 'node:fs/promises';
import { getSystemErrorMessage } from 'node:util';
import { LineCounter, parseDocument } from 'yaml';
import { describeIssue } from './issues.ts';
import { type Config, configSchema } from './schema.ts';

export class ConfigError extends Error {
  readonly problems: string[];
  /** `message` replaces the "invalid configuration" list when one line says it all. */
  constructor(source: string, problems: string[], message?: string) {
    super(message ?? `${source}: invalid configuration\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** The file itself could not be read: missing, a directory, no permission. */
  static unreadable(path: string, err: unknown): ConfigError {
    const e = err as NodeJS.ErrnoException;
    const why = typeof e.errno === 'number' ? `${getSystemErrorMessage(e.errno)} (${e.code})` : String(err);
    const problem = `cannot read the file: ${why}`;
    return new ConfigError(path, [problem], `${path}: ${problem}`);
  }
}

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
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    // FILE:LINE:COL: message, as compilers print it: terminals and editors jump to the spot.
    throw new ConfigError(
      source,
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return `${source}:${line}:${col}: ${e.message}`;
      }),
    );
  }
  if (doc.contents === null) {
    if (requireDocument) throw new ConfigError(source, [EMPTY_FILE]);
    return parseValue({}, source, env);
  }
  const raw: unknown = doc.toJS();
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

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw ConfigError.unreadable(path, err);
  }
  return parseConfigFile(text, path, env);
}
