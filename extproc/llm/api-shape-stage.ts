// Decides what API the request speaks and whether its body is well-formed: 400 with an
// OpenAI-style message for an empty, non-JSON, ambiguous (duplicate or case-variant keys), too
// deeply nested or malformed body, 415 for a compressed or non-UTF-8 one, before any other stage
// reads it. Sets the requested model and streaming flag every later stage relies on.
//
// What the model server parses is what this stage judged: ambiguous keys are refused rather than
// guessed at, and a UTF-8 BOM is removed from the forwarded body (Go's encoding/json refuses it,
// Python's accepts it), so every server reads the same JSON text the stages read.
//
// Bodies larger than the inline limit are parsed on a worker thread, so one tenant's 4 MiB body
// never holds the event loop that every other request shares.
import type { RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import { type Coding, codingOf, decompress } from './decompress.ts';
import { type ParsePool, parseRequest } from './parse-pool.ts';
import { needsBody, type RequestParseResult, streamFlagRead } from './shapes.ts';
import { utf8Charset } from './usage.ts';

/** The request body's content coding, when dlp.compressedRequests lets it be inspected. */
const compressed = defineSlot<Coding>('llm.api_shape.coding');

export const apiShape = defineStage({
  name: 'llm.api_shape',
  summary: 'Checks the request body (400/415) and reads the model and streaming flag later stages rely on.',
  needs: ['api'],
  provides: ['parsed'],
  create: (_config, deps) => {
    const pool = deps.parsePool;
    return {
      onRequestHeaders(ctx: RequestContext): void {
        if (ctx.api === 'unknown') return;
        if (ctx.method === 'POST' && needsBody(ctx.api)) {
          if (!ctx.hasRequestBody) throw refuse('empty_body', 'The request has no body; expected a JSON object.');
          const encoding = ctx.headers.get('content-encoding');
          if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
            const coding = ctx.config.dlp.compressedRequests === 'inspect' ? codingOf(encoding) : undefined;
            if (coding === undefined)
              throw refuse(
                'unsupported_content_encoding',
                'Compressed request bodies are not supported; send the JSON body without Content-Encoding.',
              );
            // Judged and forwarded decompressed: what goes upstream is what the stages read.
            ctx.set(compressed, coding);
            ctx.out.removeHeaders.push('content-encoding');
          }
          if (!utf8Charset(ctx.headers.get('content-type'))) {
            throw refuse(
              'unsupported_charset',
              'The request body must be UTF-8 JSON; send it with Content-Type: application/json.',
            );
          }
        }
        // The gate reads LLM responses (usage, later DLP): ask upstream not to compress them.
        // Envoy's compressor filter, if configured, still compresses toward the client.
        if (ctx.headers.has('accept-encoding')) ctx.out.removeHeaders.push('accept-encoding');
      },
      onRequestBody(ctx: RequestContext, body: Buffer): void | Promise<void> {
        if (ctx.api === 'unknown' || ctx.method !== 'POST' || !needsBody(ctx.api)) return;
        const coding = ctx.get(compressed);
        if (coding !== undefined) {
          // Decompressed on libuv's thread pool, never past maxDecompressedBytes nor the body limit
          // (a bomb is 413).
          ctx.out.slow = true;
          const max = Math.min(ctx.config.dlp.maxDecompressedBytes, ctx.config.server.maxRequestBodyBytes);
          return decompress(coding, body, max).then((plain) => {
            ctx.rewrittenBody = plain;
            ctx.decide({
              stage: 'llm.api_shape',
              ruleId: 'dlp.compressedRequests',
              effect: 'modify',
              reason: `request body decompressed (${coding}) to be inspected and forwarded`,
            });
            return judge(ctx, plain, pool);
          });
        }
        return judge(ctx, body, pool);
      },
    };
  },
});

function judge(ctx: RequestContext, body: Buffer, pool: ParsePool | undefined): void | Promise<void> {
  const limits = {
    maxDepth: ctx.config.server.maxJsonDepth,
    maxTokensSlot: ctx.config.policy.defaultMaxTokens !== undefined,
  };
  const result = parseRequest(pool, ctx.api, body, limits, () => ctx.signal);
  if (result instanceof Promise) {
    // Off the event loop; the state machine asks Envoy to wait longer for this message.
    ctx.out.slow = true;
    return result.then((r) => apply(ctx, r, body));
  }
  apply(ctx, result, body);
}

function apply(ctx: RequestContext, result: RequestParseResult, body: Buffer): void {
  if (!result.ok) throw refuse(result.code, result.message, { param: result.param });
  const request = result.request;
  // TGI's /generate ignores "stream": true and answers whole: policy and the audit see that.
  if (request.stream && !streamFlagRead(request.kind, ctx.path)) request.stream = false;
  ctx.parsed = request;
  // A generating request that sets no output limit gets the configured one, in its body: the
  // server then stops where the policy and the limits counted.
  const limit = ctx.config.policy.defaultMaxTokens;
  const slot = request.maxTokensSlot;
  if (limit !== undefined && slot !== undefined) {
    ctx.editRequestBody(slot.start, slot.end, Buffer.from(`${slot.before}${limit}${slot.after}`));
    request.maxTokens = limit;
    ctx.decide({
      stage: 'llm.api_shape',
      ruleId: 'policy.defaultMaxTokens',
      effect: 'modify',
      reason: `the request set no output limit: ${limit} written into it`,
    });
  }
  // TGI's body names no model: the one it serves is configured (routing.tgiModel), or none.
  ctx.modelRequested = request.modelSpan === undefined ? ctx.config.routing.tgiModel : request.model;
  ctx.stream = request.stream;
  if (request.bomLength > 0) {
    ctx.rewrittenBody = body.subarray(request.bomLength);
    ctx.decide({
      stage: 'llm.api_shape',
      ruleId: 'llm.utf8_bom',
      effect: 'modify',
      reason: 'UTF-8 byte order mark removed from the forwarded body',
    });
  }
  ctx.setMetadata('model_requested', ctx.modelRequested);
  ctx.setMetadata('stream', ctx.stream);
}
