// Meters tokens from what upstream reports. Streamed OpenAI requests get
// stream_options.include_usage injected so the final SSE event carries usage; when the client
// did not ask for it, that usage-only event is removed from what the client receives, so the
// client sees exactly the stream it asked for. Absent usage is recorded as absent (null in the
// audit), never as zero.

import { apiSpec } from '../llm/apis.ts';
import { streamUsageEdit } from '../llm/shapes.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';

/** The gate injected include_usage: the usage-only event is withheld from the client. */
const dropUsage = defineSlot<true>('metering.usage.drop_usage_event');

export const usageMetering = defineStage({
  name: 'metering.usage',
  summary: 'Reads token usage from responses, asking streamed OpenAI calls for it when the client did not.',
  needs: ['api', 'parsed'],
  provides: ['usage'],
  create: (config) => {
    const inject = config.metering.injectStreamUsage;
    return {
      onRequestBody(ctx: RequestContext, body: Buffer): void {
        const req = ctx.parsed;
        if (!inject || req === undefined || apiSpec(req.kind)?.usageOnRequest !== true) return;
        // Only for streams whose client did not ask for usage; undefined otherwise.
        const edit = streamUsageEdit(req, ctx.rewrittenBody ?? body);
        if (edit === undefined) return;
        ctx.editRequestBody(edit.start, edit.end, edit.insert);
        ctx.set(dropUsage, true);
        ctx.decide({
          stage: 'metering.usage',
          ruleId: 'metering.injectStreamUsage',
          effect: 'modify',
          reason: 'stream_options.include_usage added; usage event withheld from client',
        });
      },
      onResponseHeaders(ctx: RequestContext): void {
        // The gate's one response reader meters what passes (usage and served model land on the
        // context), and withholds the usage event the client did not ask for.
        if (ctx.parsed === undefined) return;
        ctx.readResponseBody({ withholdUsageEvent: ctx.get(dropUsage) === true });
      },
    };
  },
});
