// Meters tokens from what upstream reports. Streamed OpenAI requests get
// stream_options.include_usage injected so the final SSE event carries usage; when the client
// did not ask for it, that usage-only event is removed from what the client receives, so the
// client sees exactly the stream it asked for. Absent usage is recorded as absent (null in the
// audit), never as zero.

import { apiSpec } from '../llm/apis.ts';
import { createJsonUsageReader, type JsonUsageReader } from '../llm/json-usage-reader.ts';
import { createResponseStream, type ResponseStream } from '../llm/response-stream.ts';
import { bodyWithStreamUsage, needsBody } from '../llm/shapes.ts';
import { responseFormat } from '../llm/usage.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';

/** The response reader metering reads usage from. */
const reader = defineSlot<ResponseStream | JsonUsageReader>('metering.usage.reader');
/** The gate injected include_usage: the usage-only event is withheld from the client. */
const dropUsage = defineSlot<true>('metering.usage.drop_usage_event');

export const usageMetering = defineStage({
  name: 'metering.usage',
  summary: 'Reads token usage from responses, asking streamed OpenAI calls for it when the client did not.',
  needs: ['api', 'parsed'],
  provides: ['usage'],
  create: (config) => {
    const inject = config.metering.injectStreamUsage;
    const maxBuffered = config.server.maxBufferedResponseBytes;
    return {
      onRequestBody(ctx: RequestContext, body: Buffer): void {
        const req = ctx.parsed;
        if (!inject || req === undefined || apiSpec(req.kind)?.usageOnRequest !== true) return;
        // Only for streams whose client did not ask for usage; undefined otherwise.
        const rewritten = bodyWithStreamUsage(req, ctx.rewrittenBody ?? body);
        if (rewritten === undefined) return;
        ctx.rewrittenBody = rewritten;
        ctx.set(dropUsage, true);
        ctx.decide({
          stage: 'metering.usage',
          ruleId: 'metering.injectStreamUsage',
          effect: 'modify',
          reason: 'stream_options.include_usage added; usage event withheld from client',
        });
      },
      onResponseHeaders(ctx: RequestContext): void {
        if (ctx.parsed === undefined || !needsBody(ctx.api)) return;
        if (ctx.status === undefined || ctx.status < 200 || ctx.status >= 300) return;
        const encoding = ctx.responseHeaders.get('content-encoding');
        if (encoding !== undefined && encoding !== 'identity') {
          // The API-shape stage asks upstream for identity encoding; a server that compresses
          // anyway cannot be metered from its body.
          ctx.failure ??= `usage unreadable: response content-encoding ${encoding}`;
          return;
        }
        const format = responseFormat(ctx.contentType);
        if (format === 'sse' || format === 'ndjson') {
          const drop = ctx.get(dropUsage) === true;
          ctx.set(reader, createResponseStream({ format, kind: ctx.api, dropUsageEvent: drop }));
          ctx.needResponseBody('STREAMED');
          if (drop) ctx.responseBodyRewritten = true;
        } else if (format === 'json') {
          // One BUFFERED message only when its size is known and bounded; otherwise the body is
          // read STREAMED through an incremental reader that keeps nothing but usage and model,
          // so Envoy never buffers an unbounded body (a 20 MiB embeddings batch).
          ctx.set(reader, createJsonUsageReader(ctx.api));
          const length = ctx.responseHeaders.get('content-length');
          const known = length !== undefined && /^\d+$/.test(length) && Number(length) <= maxBuffered;
          ctx.needResponseBody(known ? 'BUFFERED' : 'STREAMED');
        }
      },
      onResponseBody(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer {
        const s = ctx.get(reader);
        if (s === undefined) return chunk;
        const out = s.push(chunk, endOfStream) ?? chunk;
        // Kept current, so that a response whose end is signalled by trailers has its usage.
        if (s.usage !== undefined) ctx.usage = s.usage;
        if (s.model !== undefined) ctx.modelServed = s.model;
        return out;
      },
      onEnd(ctx: RequestContext): void {
        const s = ctx.get(reader);
        // A stream cut short still reports whatever usage it carried before the cut.
        if (s !== undefined && ctx.usage === undefined) {
          ctx.usage = s.usage;
          ctx.modelServed = s.model ?? ctx.modelServed;
        }
        ctx.set(reader, undefined);
      },
    };
  },
});
