// The `audit` config section: where the one JSON line per request goes, and how far the sink may
// fall behind before the gate fails closed. Both are read when the sink opens, at start.
import { z } from 'zod';

export const auditConfig = z
  .object({
    path: z
      .string()
      .min(1)
      .default('audit.log')
      .describe(
        'File the audit JSON lines are appended to, relative to the working directory; "-" writes them to stdout. Takes effect at the next restart.',
      ),
    maxPendingBytes: z
      .number()
      .int()
      .positive()
      .default(16 * 1024 * 1024)
      .describe(
        'Audit bytes waiting to be written above which new requests are refused with 503 (fail closed) until the sink catches up; records of requests already admitted are always kept. Bounds the memory a slow or failing disk can take. Takes effect at the next restart.',
      ),
  })
  .strict()
  .prefault({})
  .describe('One JSON line per request (who, what, which decision, usage), never its content.');
