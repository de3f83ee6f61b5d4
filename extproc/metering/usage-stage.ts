// Meters tokens and prices them. Upstream's own usage comes first: streamed OpenAI requests get
// stream_options.include_usage injected so the final SSE event carries usage; when the client
// did not ask for it, that usage-only event is removed from what the client receives, so the
// client sees exactly the stream it asked for. When upstream reports none (a server that does
// not, a stream the client cancelled before the usage event), the gate counts the prompt and the
// completion the client received with a tokenizer (counter.ts), and says so in ctx.usage.source.
// Cost is computed from the counts and the price table once the request has ended.

import { apiSpec } from '../llm/apis.ts';
import { responseFamily } from '../llm/extra-texts.ts';
import type { ResponseEvent } from '../llm/response-stream.ts';
import { streamUsageEdit } from '../llm/shapes.ts';
import { responseFormat, type Usage } from '../llm/usage.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import type { CountJob, TokenCount } from './count.ts';
import { countTokens } from './counter.ts';
import { encodingMapFor } from './encodings.ts';
import { type Cost, meteringFacts } from './facts.ts';
import { compileLabels } from './labels.ts';
import { costOf, priceBookFor, zeroPrice } from './prices.ts';
import { TextCollector } from './text-collector.ts';
import { UnpricedWarnings } from './unpriced.ts';

/** The gate injected include_usage: the usage-only event is withheld from the client. */
const dropUsage = defineSlot<true>('metering.usage.drop_usage_event');
/** The request body as it went upstream, kept (a reference) for counting its tokens; past
 * MAX_PROMPT_KEPT only its length, so a long stream does not hold a large body to its end. */
const requestBody = defineSlot<Buffer | number>('metering.usage.request_body');
const MAX_PROMPT_KEPT = 256 * 1024;
/** What the response delivered, kept only while usage is absent: stream texts or JSON chunks. */
const delivered = defineSlot<TextCollector | JsonChunks>('metering.usage.delivered');

/** JSON response bytes kept for counting, up to MAX_JSON_KEPT; past it, only their size. */
class JsonChunks {
  chunks: Buffer[] = [];
  bytes = 0;
  overflow = false;
  /** Embeddings: no completion to count, so nothing is kept. */
  readonly skip: boolean;
  constructor(skip: boolean) {
    this.skip = skip;
  }
}
const MAX_JSON_KEPT = 1024 * 1024;
/** Tokens per byte of text that could not be counted (too large to keep): ~4 bytes a token. */
const BYTES_PER_TOKEN = 4;

/** One warning registry per process: a model is warned about once, whatever the reloads. */
const unpriced = new UnpricedWarnings();

export const usageMetering = defineStage({
  name: 'metering.usage',
  summary:
    'Reads token usage from responses (asking streamed OpenAI calls for it), counts tokens with a tokenizer when upstream reports none, and prices them.',
  needs: ['api', 'parsed'],
  provides: ['usage'],
  create: (config, deps) => {
    const m = config.metering;
    const inject = m.injectStreamUsage;
    const book = priceBookFor(config);
    const encodings = encodingMapFor(config);
    const unnamedEncoding = { encoding: m.tokenizers.default, exact: false };
    const labels = compileLabels(m.labels);
    const refuseUnpriced = book.active && m.unknownModel === 'refuse';
    const pool = deps.parsePool;

    const modelOf = (ctx: RequestContext): string | undefined => ctx.modelRequested ?? ctx.parsed?.model;

    /** ctx.usage from a tokenizer count, when upstream reported none and the response was read. */
    const settleUsage = (ctx: RequestContext): void | Promise<void> => {
      const kept = ctx.get(delivered);
      const body = ctx.get(requestBody);
      if (ctx.usage !== undefined || kept === undefined || body === undefined) return;
      // No body byte came (a 204, a client gone before the first byte): nothing was delivered,
      // and no usage is recorded; limits settle such a request at its reservation.
      if (ctx.responseChunks === 0) return;
      ctx.set(delivered, undefined);
      const model = modelOf(ctx);
      // A call that names no model (TGI without routing.tgiModel) is counted with the default
      // tokenizer, an estimate.
      if (model === undefined && ctx.parsed?.modelSpan !== undefined) return;
      const { encoding, exact } = model === undefined ? unnamedEncoding : encodings.forModel(model);
      // A stream cut short is charged what was delivered: never the model's own count.
      const complete = ctx.outcome === 'completed';
      let extra = 0;
      const job: CountJob = {
        kind: ctx.api,
        encoding,
        request: typeof body === 'number' ? undefined : body,
        responseJson: undefined,
        responseTexts: undefined,
      };
      let whole = typeof body !== 'number';
      // A prompt too large to have been kept: estimated from its size.
      const promptExtra = typeof body === 'number' ? Math.ceil(body / BYTES_PER_TOKEN) : 0;
      let output: number | undefined;
      if (kept instanceof TextCollector && kept.upstreamOutput !== undefined) {
        // TGI gave its output count but not the prompt's: only the prompt is counted.
        output = kept.upstreamOutput;
      } else if (kept instanceof TextCollector) {
        job.responseTexts = kept.texts();
        extra = Math.ceil(kept.droppedChars / BYTES_PER_TOKEN);
        whole = kept.droppedChars === 0;
      } else if (kept.skip) {
        // Embeddings: no output tokens.
      } else if (!kept.overflow) job.responseJson = Buffer.concat(kept.chunks);
      else {
        extra = Math.ceil(kept.bytes / BYTES_PER_TOKEN);
        whole = false;
      }
      const source = exact && complete && whole ? 'tokenizer' : 'estimated';
      const apply = (n: TokenCount): void => {
        const input = n.input + promptExtra;
        const out = output ?? n.output + extra;
        ctx.usage = { inputTokens: input, outputTokens: out, totalTokens: input + out, source };
      };
      const r = countTokens(pool, job);
      if (!(r instanceof Promise)) return apply(r);
      return r.then(apply, (err: unknown) => {
        deps.logger.warn({ requestId: ctx.requestId, err }, 'token count failed; usage recorded as absent');
      });
    };

    const price = (ctx: RequestContext, usage: Usage | undefined): Cost | null => {
      const model = modelOf(ctx);
      if (!book.active || usage === undefined || model === undefined) return null;
      let p = book.priceFor(model, ctx.route?.name);
      if (p === undefined) {
        unpriced.note(model, deps);
        p = zeroPrice(m.currency);
      }
      const amount = costOf(p, {
        input: usage.inputTokens,
        cachedInput: usage.cachedInputTokens,
        output: usage.outputTokens,
      });
      return { amount, currency: p.currency };
    };

    const finish = (ctx: RequestContext): void => {
      const cost = price(ctx, ctx.usage);
      ctx.set(meteringFacts, { cost, labels: labels.read(ctx) });
      deps.metrics.countCost(ctx, cost);
    };

    return {
      onRequestBody(ctx: RequestContext, body: Buffer): void {
        const req = ctx.parsed;
        if (req === undefined) return;
        const model = modelOf(ctx);
        // A call whose body names no model (TGI without routing.tgiModel) cannot be priced.
        const unnamed = model === undefined && req.modelSpan === undefined;
        if (
          refuseUnpriced &&
          (unnamed || (model !== undefined && book.priceFor(model, ctx.route?.name) === undefined))
        ) {
          ctx.decide({
            stage: 'metering.usage',
            ruleId: 'metering.unknownModel',
            effect: 'deny',
            reason: 'no price covers the model',
          });
          throw refuse(
            'model_not_priced',
            model === undefined
              ? 'This call names no model, so it has no price, and this gateway refuses unpriced models.'
              : `The model '${model}' has no price configured, and this gateway refuses unpriced models.`,
            { ruleId: 'metering.unknownModel' },
          );
        }
        const sent = ctx.rewrittenBody ?? body;
        ctx.set(requestBody, sent.length <= MAX_PROMPT_KEPT ? sent : sent.length);
        if (!inject || apiSpec(req.kind)?.usageOnRequest !== true) return;
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
        // context), and withholds the usage event the client did not ask for. Streams are read
        // event by event, so what the client received can be counted if no usage comes.
        const req = ctx.parsed;
        if (req === undefined) return;
        // What was kept for counting follows what came, not what the body asked: a server that
        // ignores the stream flag (TGI's /generate) answers JSON, whose text must still count.
        const format = responseFormat(ctx.responseHeaders.get('content-type'));
        const stream = format === 'sse' || format === 'ndjson' || (format !== 'json' && req.stream);
        ctx.readResponseBody({ withholdUsageEvent: ctx.get(dropUsage) === true, observeEvents: stream });
        if (ctx.status === undefined || ctx.status < 200 || ctx.status >= 300) return;
        ctx.set(
          delivered,
          stream
            ? new TextCollector(responseFamily(ctx.api))
            : new JsonChunks(req.kind === 'openai.embeddings' || req.kind === 'ollama.embed'),
        );
      },
      onResponseEvent(ctx: RequestContext, event: ResponseEvent): void {
        const kept = ctx.get(delivered);
        if (kept instanceof TextCollector && ctx.usage === undefined) kept.add(event);
      },
      onResponseBody(ctx: RequestContext, chunk: Buffer): Buffer {
        const kept = ctx.get(delivered);
        if (!(kept instanceof JsonChunks) || kept.skip || ctx.usage !== undefined) return chunk;
        kept.bytes += chunk.length;
        if (kept.overflow) return chunk;
        if (kept.bytes > MAX_JSON_KEPT) {
          kept.overflow = true;
          kept.chunks = [];
        } else kept.chunks.push(chunk);
        return chunk;
      },
      beforeEnd(ctx: RequestContext): void | Promise<void> {
        if (ctx.parsed === undefined) return;
        const counting = settleUsage(ctx);
        if (counting === undefined) return finish(ctx);
        return counting.then(() => finish(ctx));
      },
    };
  },
});
