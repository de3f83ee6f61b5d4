// What a config that cannot be used says: the file, then one line per problem, each naming the
// field. `lm-gate check-config`, `serve` and a rejected hot reload all print it as it is.
import { getSystemErrorMessage } from 'node:util';

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
    const problem = `cannot read the file: ${systemErrorText(err)}`;
    return new ConfigError(path, [problem], `${path}: ${problem}`);
  }
}

/** "no such file or directory (ENOENT)" for a system error, its text for anything else. */
export function systemErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return typeof e.errno === 'number' ? `${getSystemErrorMessage(e.errno)} (${e.code})` : String(err);
}
