// Command-line mistakes: one line saying what was wrong and the usage of the command, exit 2.
// node:util parseArgs reports them as TypeErrors with a stack; a user who typed --bogus needs
// neither the stack nor Node's advice about positional arguments.
import { type ParseArgsConfig, parseArgs } from 'node:util';

export class UsageError extends Error {
  /** `command` as typed, "lm-gate serve"; `usage` its synopsis, when it helps. */
  constructor(command: string, problem: string, usage?: string) {
    super(`${command}: ${problem}${usage ? `; usage: ${usage}` : ''}`);
    this.name = 'UsageError';
  }
}

/** parseArgs, with its errors turned into UsageErrors. */
export function parseCommandArgs<T extends ParseArgsConfig>(
  command: string,
  usage: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS_')) throw err;
    // "Unknown option '--nope'. To specify a positional argument ...": the first sentence.
    const first = (err as Error).message.split(/\.\s/)[0] ?? '';
    throw new UsageError(command, first.charAt(0).toLowerCase() + first.slice(1), usage);
  }
}

/** A command that was understood but could not do its job (a key id that is not in the file,
 * a file another command is editing): one line, exit 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}
