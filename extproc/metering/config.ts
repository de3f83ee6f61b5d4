// The `metering` config section: how the metering.usage stage gets token counts out of upstream.
import { z } from 'zod';

export const meteringConfig = z
  .object({
    injectStreamUsage: z
      .boolean()
      .default(true)
      .describe(
        'Add stream_options.include_usage to streamed OpenAI requests so upstream reports usage; the usage event is removed from what a client that did not ask for it receives, so it sees the stream it asked for. false leaves such requests untouched, and their streams are metered only if upstream reports usage unasked.',
      ),
  })
  .strict()
  .prefault({})
  .describe('Token metering from what upstream reports; usage that is absent is recorded as absent, never as zero.');
