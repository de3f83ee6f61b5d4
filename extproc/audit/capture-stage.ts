// audit.capture: keeps the prompt as the model server received it and the response as the
// client received it, for requests an audit.capture rule selects (docs/audit.md, "Capture").
// It runs last, so what it reads is what the other stages' edits made: the request body with
// every splice applied (DLP redaction, a model alias, stream_options), and the response after
// dlp.response (a stream's events as replaced, a JSON body as rewritten). A request refused
// before its body went upstream has no prompt captured: nothing was sent, and a blocked prompt
// would be the very content the block kept in.
//
// At onEnd the capture line is built and hashed; the audit record carries the digest
// (captureSummary) and the state machine hands the line to the audit sink with the record, which
// writes it to the capture files. Memory per request: maxChars per direction, plus a JSON
// response held until its end (bounded by server.maxBufferedResponseBytes; past it the response
// is not kept).
import { applyBodyEdits } from '../llm/body-edits.ts';
import type { ResponseEvent } from '../llm/response-stream.ts';
import { responseFormat } from '../llm/usage.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import { type CaptureChoice, compileCaptureRules } from './capture-rules.ts';
import {
  CaptureBudget,
  jsonResponseParts,
  type PromptPart,
  promptParts,
  type ResponsePart,
  StreamTexts,
} from './capture-text.ts';
import { sha256Hex } from './chain.ts';

/** What the audit record says of a capture: the capture line's digest and sizes, never text. */
export interface CaptureSummary {
  sha256: string;
  rule: string;
  prompt_chars: number | null;
  response_chars: number | null;
  truncated: { prompt: boolean; response: boolean };
}

interface CaptureState {
  choice: CaptureChoice;
  prompt: PromptPart[] | undefined;
  promptBudget: CaptureBudget | undefined;
  responseBudget: CaptureBudget | undefined;
  stream: StreamTexts | undefined;
  json: Buffer[] | undefined;
  jsonBytes: number;
  response: ResponsePart[] | undefined;
  /** Built at onEnd. */
  line: string | undefined;
  summary: CaptureSummary | undefined;
}

const slot = defineSlot<CaptureState>('audit.capture');

/** APIs whose answer is text (embeddings answer vectors: nothing to capture). */
const TEXT_ANSWERS: ReadonlySet<string> = new Set([
  'openai.chat',
  'openai.completions',
  'ollama.chat',
  'ollama.generate',
]);

/** The capture line of a finished request (no newline), for the audit sink; undefined when the
 * request was not captured. */
export function captureLine(ctx: RequestContext): string | undefined {
  return ctx.get(slot)?.line;
}

/** The audit record's `capture` member: null when the request was not captured. */
export function captureSummary(ctx: RequestContext): CaptureSummary | null {
  return ctx.get(slot)?.summary ?? null;
}

/** The held JSON response's answer texts, once it is complete. */
function readJson(state: CaptureState): void {
  const json = state.json!;
  state.json = undefined;
  const whole = json.length === 1 ? json[0]! : Buffer.concat(json);
  try {
    state.response = jsonResponseParts(whole, state.responseBudget!);
  } catch {
    // Not JSON after all (a mislabelled or truncated body): nothing to keep.
    state.response = undefined;
  }
}

export const auditCapture = defineStage({
  name: 'audit.capture',
  summary:
    'For requests an audit.capture rule selects: keeps the prompt as forwarded and the response as delivered (after DLP), size-capped, in capture files the audit record links by digest.',
  needs: [],
  provides: [],
  // Configured by audit.capture.rules, not pipeline.stages: with no rule it is no hook at all.
  always: true,
  create: (config) => {
    const match = compileCaptureRules(config.audit.capture.rules);
    if (match === undefined) return {};
    const maxJson = config.server.maxBufferedResponseBytes;
    return {
      onRequestBody(ctx: RequestContext, body: Buffer): void {
        // Without the API-shape parse the body is not known to be JSON of a known API.
        if (ctx.parsed === undefined) return;
        const choice = match({
          principal: ctx.principal,
          endpoint: ctx.api,
          model: ctx.modelRequested,
          route: ctx.route?.name,
        });
        if (choice === undefined || (!choice.prompt && !choice.response)) return;
        const state: CaptureState = {
          choice,
          prompt: undefined,
          promptBudget: undefined,
          responseBudget: undefined,
          stream: undefined,
          json: undefined,
          jsonBytes: 0,
          response: undefined,
          line: undefined,
          summary: undefined,
        };
        if (choice.prompt) {
          // The bytes the state machine forwards (stream.ts answerRequestBody): the canonical
          // body with every stage's splices applied.
          const canonical = ctx.rewrittenBody ?? body;
          const edits = ctx.requestBodyEdits;
          const forwarded = edits === undefined ? canonical : applyBodyEdits(canonical, edits);
          state.promptBudget = new CaptureBudget(choice.maxChars);
          state.prompt = promptParts(forwarded, state.promptBudget);
        }
        ctx.set(slot, state);
      },

      onResponseHeaders(ctx: RequestContext): void {
        const state = ctx.get(slot);
        if (state === undefined || !state.choice.response || !TEXT_ANSWERS.has(ctx.api)) return;
        const status = ctx.status ?? 0;
        if (status < 200 || status >= 300) return;
        const encoding = ctx.responseHeaders.get('content-encoding');
        if (encoding !== undefined && encoding !== 'identity') return;
        const format = responseFormat(ctx.responseHeaders.get('content-type'));
        if (format === 'other') return;
        state.responseBudget = new CaptureBudget(state.choice.maxChars);
        if (format === 'json') {
          state.json = [];
          ctx.readResponseBody();
        } else {
          state.stream = new StreamTexts(state.responseBudget);
          // Read only: the events pass as they came unless another stage rewrites them.
          ctx.readResponseBody({ observeEvents: true });
        }
      },

      onResponseEvent(ctx: RequestContext, event: ResponseEvent): void {
        const stream = ctx.get(slot)?.stream;
        if (stream === undefined) return;
        const texts = event.texts;
        for (let i = 0; i < texts.length; i++) stream.add(texts[i]!.choice, texts[i]!.text);
      },

      onResponseBody(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer {
        const state = ctx.get(slot);
        const json = state?.json;
        if (json === undefined) return chunk;
        state!.jsonBytes += chunk.length;
        if (state!.jsonBytes > maxJson) {
          // Too large to hold: the response is recorded as seen (its size) but not kept.
          state!.json = undefined;
          return chunk;
        }
        if (chunk.length > 0) json.push(chunk);
        if (endOfStream) readJson(state!);
        return chunk;
      },

      onEnd(ctx: RequestContext): void {
        const state = ctx.get(slot);
        if (state === undefined) return;
        // A JSON body whose end came with trailers, or was cut short (then it does not parse).
        if (state.json !== undefined && state.json.length > 0) readJson(state);
        const response = state.stream !== undefined ? state.stream.parts() : state.response;
        const responseBudget = response === undefined ? undefined : state.responseBudget;
        const line = JSON.stringify({
          type: 'capture',
          request_id: ctx.requestId,
          time: new Date(ctx.startedAtMs).toISOString(),
          rule: state.choice.rule,
          prompt: state.prompt ?? null,
          response: response ?? null,
          chars: { prompt: state.promptBudget?.total ?? null, response: responseBudget?.total ?? null },
          truncated: {
            prompt: state.promptBudget?.truncated ?? false,
            response: responseBudget?.truncated ?? false,
          },
        });
        state.line = line;
        state.summary = {
          sha256: sha256Hex(line),
          rule: state.choice.rule,
          prompt_chars: state.promptBudget?.total ?? null,
          response_chars: responseBudget?.total ?? null,
          truncated: {
            prompt: state.promptBudget?.truncated ?? false,
            response: responseBudget?.truncated ?? false,
          },
        };
      },
    };
  },
});
