// Decides what API the request speaks and whether its body is well-formed: 400 with an
// OpenAI-style message for an empty, non-JSON, compressed or malformed body, before any other
// stage reads it. Sets the requested model and streaming flag every later stage relies on.
import { needsBody, parseRequestBody } from '../llm/shapes.ts';
import type { RequestContext } from './context.ts';
import { errors } from './errors.ts';
import type { Stage } from './stage.ts';

export function apiShapeStage(): Stage {
  return {
    name: 'llm.api_shape',
    onRequestHeaders(ctx: RequestContext): void {
      if (ctx.api === 'unknown') return;
      if (ctx.method === 'POST' && needsBody(ctx.api)) {
        if (!ctx.hasRequestBody)
          throw errors.badRequest('The request has no body; expected a JSON object.', 'empty_body');
        const encoding = ctx.headers.get('content-encoding');
        if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
          throw errors.badRequest(
            'Compressed request bodies are not supported; send the JSON body without Content-Encoding.',
            'unsupported_content_encoding',
          );
        }
      }
      // The gate reads LLM responses (usage, later DLP): ask upstream not to compress them.
      // Envoy's compressor filter, if configured, still compresses toward the client.
      if (ctx.headers.has('accept-encoding')) ctx.out.removeHeaders.push('accept-encoding');
    },
    onRequestBody(ctx: RequestContext, body: Buffer): void {
      if (ctx.api === 'unknown' || ctx.method !== 'POST' || !needsBody(ctx.api)) return;
      const result = parseRequestBody(ctx.api, body);
      if (!result.ok) throw errors.badRequest(result.message, 'invalid_request', result.param);
      ctx.parsed = result.request;
      ctx.modelRequested = result.request.model;
      ctx.stream = result.request.stream;
      ctx.setMetadata('model_requested', ctx.modelRequested);
      ctx.setMetadata('stream', ctx.stream);
    },
  };
}
