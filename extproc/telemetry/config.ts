// The `logging` config section. The gate logs JSON lines to stderr (pino); the level is the only
// choice an operator makes, and a reload applies it at once.
import { z } from 'zod';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const loggingConfig = z
  .object({
    level: z
      .enum(levels)
      .default('info')
      .describe(
        `Least severe log line written, one of ${levels.join(', ')}. info logs start, reloads and drains, and every warning (a message deadline exceeded) and error (a failed stage or audit write); requests themselves go to the audit log, not here. debug adds each broken ext_proc stream; silent writes nothing.`,
      ),
  })
  .strict()
  .prefault({})
  .describe('Operational log of the gate itself, as JSON lines on stderr.');
