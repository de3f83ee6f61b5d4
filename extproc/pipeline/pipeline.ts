// Runs the ordered stages for one phase. Synchronous stages run back to back with no promise
// allocated; the first stage that returns a promise switches the rest of that phase to async.
import type { ResponseEvent } from '../llm/response-stream.ts';
import type { RequestContext } from './context.ts';
import type { MaybePromise, Stage } from './stage.ts';

type HookName = 'onRequestHeaders' | 'onResponseHeaders';

export interface PipelineEntry {
  readonly name: string;
  readonly stage: Stage;
}

export class Pipeline {
  readonly entries: readonly PipelineEntry[];
  private readonly requestHeaderStages: Stage[];
  private readonly requestBodyStages: Stage[];
  private readonly responseHeaderStages: Stage[];
  private readonly responseBodyStages: Stage[];
  private readonly responseEventStages: Stage[];
  private readonly endEntries: PipelineEntry[];
  private readonly beforeEndEntries: PipelineEntry[];

  constructor(entries: readonly PipelineEntry[]) {
    this.entries = entries;
    const with_ = (hook: keyof Stage) => entries.filter((e) => e.stage[hook]).map((e) => e.stage);
    this.requestHeaderStages = with_('onRequestHeaders');
    this.requestBodyStages = with_('onRequestBody');
    this.responseHeaderStages = with_('onResponseHeaders');
    this.responseBodyStages = with_('onResponseBody');
    this.responseEventStages = with_('onResponseEvent');
    this.endEntries = entries.filter((e) => e.stage.onEnd);
    this.beforeEndEntries = entries.filter((e) => e.stage.beforeEnd);
  }

  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  requestHeaders(ctx: RequestContext): MaybePromise {
    return runHook(this.requestHeaderStages, 'onRequestHeaders', ctx, 0);
  }

  responseHeaders(ctx: RequestContext): MaybePromise {
    return runHook(this.responseHeaderStages, 'onResponseHeaders', ctx, 0);
  }

  requestBody(ctx: RequestContext, body: Buffer): MaybePromise {
    return runBody(this.requestBodyStages, ctx, body, 0);
  }

  /** Chains the chunk through every stage; returns what to forward (a promise only when a
   * stage returned one). */
  responseBody(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer | Promise<Buffer> {
    return runResponseBody(this.responseBodyStages, ctx, chunk, endOfStream, 0);
  }

  /** Hands one decoded response event to every stage that reads events, in order, until one
   * ends the stream. */
  responseEvent(ctx: RequestContext, event: ResponseEvent): void {
    for (const s of this.responseEventStages) {
      s.onResponseEvent!(ctx, event);
      if (ctx.streamError !== undefined) return;
    }
  }

  /** Every stage's onEnd runs, also when another throws or rejects; failures are reported to
   * `onError` with the stage's name and never stop the others. Returns a promise only when a
   * stage's onEnd is async (the common request allocates none). */
  end(ctx: RequestContext, onError: (stage: string, err: unknown) => void): MaybePromise {
    const before = runBeforeEnd(this.beforeEndEntries, ctx, onError, 0);
    if (before) return before.then(() => this.onEnds(ctx, onError));
    return this.onEnds(ctx, onError);
  }

  private onEnds(ctx: RequestContext, onError: (stage: string, err: unknown) => void): MaybePromise {
    let pending: Promise<void>[] | undefined;
    for (const e of this.endEntries) {
      try {
        const r = e.stage.onEnd!(ctx);
        if (r) {
          pending ??= [];
          pending.push(r.catch((err: unknown) => onError(e.name, err)));
        }
      } catch (err) {
        onError(e.name, err);
      }
    }
    if (pending) return Promise.all(pending).then(() => undefined);
  }

  get wantsResponseBody(): boolean {
    return this.responseBodyStages.length > 0;
  }
}

function runResponseBody(
  stages: Stage[],
  ctx: RequestContext,
  chunk: Buffer,
  endOfStream: boolean,
  from: number,
): Buffer | Promise<Buffer> {
  let out = chunk;
  for (let i = from; i < stages.length; i++) {
    const r = stages[i]!.onResponseBody!(ctx, out, endOfStream);
    if (r instanceof Promise) return r.then((b) => runResponseBody(stages, ctx, b, endOfStream, i + 1));
    out = r;
  }
  return out;
}

/** beforeEnd hooks in order; a failure is reported and the next one still runs. */
function runBeforeEnd(
  entries: PipelineEntry[],
  ctx: RequestContext,
  onError: (stage: string, err: unknown) => void,
  from: number,
): MaybePromise {
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    let r: MaybePromise;
    try {
      r = e.stage.beforeEnd!(ctx);
    } catch (err) {
      onError(e.name, err);
      continue;
    }
    if (r)
      return r.then(
        () => runBeforeEnd(entries, ctx, onError, i + 1),
        (err: unknown) => {
          onError(e.name, err);
          return runBeforeEnd(entries, ctx, onError, i + 1);
        },
      );
  }
}

function runHook(stages: Stage[], hook: HookName, ctx: RequestContext, from: number): MaybePromise {
  for (let i = from; i < stages.length; i++) {
    const r = stages[i]![hook]!(ctx);
    if (r) return r.then(() => runHook(stages, hook, ctx, i + 1));
  }
}

function runBody(stages: Stage[], ctx: RequestContext, body: Buffer, from: number): MaybePromise {
  for (let i = from; i < stages.length; i++) {
    const r = stages[i]!.onRequestBody!(ctx, body);
    if (r) return r.then(() => runBody(stages, ctx, body, i + 1));
  }
}
