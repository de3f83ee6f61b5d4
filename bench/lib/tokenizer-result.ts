// The result `npm run bench:tokenizer` writes (bench/results/tokenizer.json): checked by
// bench/tokenizer.test.ts, so the file the README quotes keeps one shape.
import { z } from 'zod';

const ms = z.number().nonnegative();

export const tokenizerResult = z.strictObject({
  kind: z.enum(['full', 'quick']),
  command: z.string(),
  commit: z.string(),
  startedAt: z.string(),
  durationS: z.number().nonnegative(),
  environment: z.strictObject({
    cpuModel: z.string(),
    cores: z.number().int().positive(),
    node: z.string(),
    gptTokenizer: z.string(),
    load1Start: z.number().nonnegative(),
    load1End: z.number().nonnegative(),
  }),
  rounds: z.number().int().positive(),
  /** Loading an encoding in a fresh process: medians over `processes` children. */
  load: z.array(
    z.strictObject({
      encoding: z.string(),
      processes: z.number().int().positive(),
      wallMs: ms,
      cpuMs: ms,
      /** RSS and V8 heap the load added, after a full GC. */
      rssMiB: z.number(),
      heapMiB: z.number(),
      /** The first count after the load (1 KiB of prose): any lazy set-up lands here. */
      firstCountMs: ms,
    }),
  ),
  /** countJob on one chat message of `bytes` of text, in this thread, encoding loaded. */
  count: z.array(
    z.strictObject({
      encoding: z.string(),
      text: z.string(),
      bytes: z.number().int().positive(),
      tokens: z.number().int().nonnegative(),
      /** Merge cache cleared before every count: text the tokenizer has not seen. */
      coldCpuMsPerKiB: ms,
      coldWallMsPerKiB: ms,
      /** The same text again: its chunks are all in the merge cache. */
      warmCpuMsPerKiB: ms,
    }),
  ),
  /** countTokens (extproc/metering/counter.ts) with a parse pool of one worker thread. */
  pool: z.strictObject({
    encoding: z.string(),
    inlineMaxBytes: z.number().int().positive(),
    /** First job on a fresh pool: worker start, encoding load and the count. */
    coldFirstJobMs: ms,
    rows: z.array(
      z.strictObject({
        text: z.string(),
        bytes: z.number().int().positive(),
        /** countTokens call to result, median. */
        endToEndMs: ms,
        /** The synchronous part on the caller's thread (copies, postMessage), median. */
        submitMs: ms,
        /** countJob inline on this thread, encoding loaded, cold merge cache, median. */
        inlineMs: ms,
      }),
    ),
  }),
});

export type TokenizerResult = z.infer<typeof tokenizerResult>;
