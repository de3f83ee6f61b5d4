// Model listings show only what the caller may use: GET /v1/models and Ollama's /api/tags are
// answered by the model server with every model it has, and a caller should not learn the names
// of models it cannot reach (a fine-tune named after another tenant's client, say). The
// listing is read whole (BUFFERED; model lists are small, and the read is bounded by
// server.maxBufferedResponseBytes) and the entries the caller may not use are removed.
import type { RequestContext } from '../pipeline/context.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import { ANY } from './patterns.ts';

/** The listing this response carries, once the stage decided to filter it. */
const filtering = defineSlot<'openai' | 'ollama'>('policy.model_list');

const EMPTY = { openai: '{"object":"list","data":[]}', ollama: '{"models":[]}' } as const;

export const modelList = defineStage({
  name: 'policy.model_list',
  summary: 'Removes from model listings (/v1/models, /api/tags) the models the caller may not use.',
  needs: ['api', 'principal'],
  provides: [],
  create: (config) => {
    const maxBytes = config.server.maxBufferedResponseBytes;
    return {
      onResponseHeaders(ctx: RequestContext): void {
        const kind = ctx.api === 'openai.models' ? 'openai' : ctx.api === 'ollama.tags' ? 'ollama' : undefined;
        if (kind === undefined || ctx.status !== 200) return;
        // A caller whose credential limits no model sees the whole list.
        const scope = ctx.principal?.scope;
        if (scope === undefined || scope.models === ANY) return;
        ctx.set(filtering, kind);
        ctx.needResponseBody('BUFFERED');
        // The filtered list is shorter: upstream's length cannot stand.
        if (ctx.responseHeaders.has('content-length')) ctx.out.removeHeaders.push('content-length');
      },
      onResponseBody(ctx: RequestContext, body: Buffer, endOfStream: boolean): Buffer {
        const kind = ctx.get(filtering);
        if (kind === undefined || !endOfStream) return body;
        const mayUse = (model: unknown): boolean => typeof model === 'string' && mayUseModel(ctx, model);
        const filtered = body.length > maxBytes ? undefined : filterListing(kind, body, mayUse);
        if (filtered === undefined) {
          // Fail closed: a listing the gate cannot read shows nothing rather than everything.
          ctx.failure ??= 'model listing could not be filtered; an empty list was sent';
          return Buffer.from(EMPTY[kind]);
        }
        ctx.decide({
          stage: 'policy.model_list',
          ruleId: `${ctx.principal?.scope?.source ?? 'policy'}.models`,
          effect: 'modify',
          reason: `listing filtered to ${filtered.kept} of ${filtered.total} models`,
        });
        return filtered.body;
      },
    };
  },
});

/** Whether the caller may use a model, by the same rules a request for it would meet. */
function mayUseModel(ctx: RequestContext, model: string): boolean {
  const scope = ctx.principal?.scope;
  return scope === undefined || scope.models(model);
}

/** The listing with the entries the caller may not use removed, or undefined when it is not a
 * listing of the expected shape. */
export function filterListing(
  kind: 'openai' | 'ollama',
  body: Buffer,
  mayUse: (model: unknown) => boolean,
): { body: Buffer; kept: number; total: number } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const key = kind === 'openai' ? 'data' : 'models';
  const list = (doc as Record<string, unknown>)[key];
  if (!Array.isArray(list)) return undefined;
  const kept = list.filter((entry) => {
    if (typeof entry !== 'object' || entry === null) return false;
    const e = entry as Record<string, unknown>;
    // Ollama names a model by `name` and repeats it in `model`: both must be allowed.
    return kind === 'openai' ? mayUse(e.id) : mayUse(e.name) && (e.model === undefined || mayUse(e.model));
  });
  (doc as Record<string, unknown>)[key] = kept;
  return { body: Buffer.from(JSON.stringify(doc)), kept: kept.length, total: list.length };
}
