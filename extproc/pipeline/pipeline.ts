// Runs the ordered stages for one phase. Synchronous stages run back to back with no promise
// allocated; the first stage that returns a promise switches the rest of that phase to async.
import type { RequestContext } from './context.ts';
import type { MaybePromise, Stage } from './stage.ts';

type HookName = 'onRequestHeaders' | 'onResponseHeaders';

export class Pipeline {
  readonly stages: readonly Stage[];
  private readonly requestHeaderStages: Stage[];
  private readonly requestBodyStages: Stage[];
  private readonly responseHeaderStages: Stage[];
  private readonly responseBodyStages: Stage[];

  constructor(stages: readonly Stage[]) {
    this.stages = stages;
    this.requestHeaderStages = stages.filter((s) => s.onRequestHeaders);
    this.requestBodyStages = stages.filter((s) => s.onRequestBody);
    this.responseHeaderStages = stages.filter((s) => s.onResponseHeaders);
    this.responseBodyStages = stages.filter((s) => s.onResponseBody);
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

  /** Chains the chunk through every stage; returns what to forward. */
  responseBody(ctx: RequestContext, chunk: Buffer, endOfStream: boolean): Buffer {
    let out = chunk;
    for (const s of this.responseBodyStages) out = s.onResponseBody!(ctx, out, endOfStream);
    return out;
  }

  /** Every stage's onEnd runs even if one throws; the first error is rethrown after all ran. */
  end(ctx: RequestContext): void {
    let first: unknown;
    for (const s of this.stages) {
      try {
        s.onEnd?.(ctx);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  get wantsResponseBody(): boolean {
    return this.responseBodyStages.length > 0;
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
