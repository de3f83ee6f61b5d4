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

/** A command that could not do its job for a reason outside the command line (Redis
 * unreachable, nothing to lift): one line on stderr, exit 1. */
export class CommandFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailed';
  }
}
