// Model listings show only what the caller may use: GET /v1/models and Ollama's /api/tags are
// answered by the model server with every model it has, and a caller should not learn the names
// of models it cannot reach (a fine-tune named after another tenant's client, say). The
// listing is read whole (BUFFERED; model lists are small, and the read is bounded by
// server.maxBufferedResponseBytes) and the entries the caller may not use are removed: those
// its credential's scope leaves out, those another tenant owns (policy.tenantModels), those the
// local policy rules would refuse for a plain chat call now (policy.rules, when that stage
// runs), those routing has no route for, and those the kill switch disabled (when
// killswitch.model runs). OPA is not asked per listed model.
import type { Config } from '../config/schema.ts';
import { configKillSet, findKill } from '../killswitch/config-kills.ts';
import type { Principal, RequestContext } from '../pipeline/context.ts';
import { defineSlot } from '../pipeline/slots.ts';
import { defineStage } from '../pipeline/stage.ts';
import { RoutingTable } from '../routing/table.ts';
import { NO_RULES, PolicyEngine } from './engine.ts';
import type { PolicyInput } from './input.ts';
import { ANY } from './patterns.ts';

/** The listing this response carries, once the stage decided to filter it. */
const filtering = defineSlot<'openai' | 'ollama'>('policy.model_list');

const EMPTY = { openai: '{"object":"list","data":[]}', ollama: '{"models":[]}' } as const;

export const modelList = defineStage({
  name: 'policy.model_list',
  summary: 'Removes from model listings (/v1/models, /api/tags) the models the caller may not use.',
  needs: ['api', 'principal'],
  provides: [],
  create: (config, deps) => {
    const maxBytes = config.server.maxBufferedResponseBytes;
    const judge = modelJudge(config);
    // Killed models (config and Redis), read per listing: the board changes under a snapshot.
    const killsRun = config.pipeline.stages.includes('killswitch.model');
    const fromConfig = configKillSet(config);
    const board = deps.kills;
    const killed = (model: string): boolean =>
      killsRun &&
      !(fromConfig.empty && board.current.empty) &&
      findKill(fromConfig, board, 'model', model, deps.clock) !== undefined;
    return {
      onResponseHeaders(ctx: RequestContext): void {
        const kind = ctx.api === 'openai.models' ? 'openai' : ctx.api === 'ollama.tags' ? 'ollama' : undefined;
        if (kind === undefined || ctx.status !== 200) return;
        // A caller nothing limits sees the whole list, unread.
        const scope = ctx.principal?.scope;
        const killsAny = killsRun && !(fromConfig.empty && board.current.empty);
        if (judge === undefined && !killsAny && (scope === undefined || scope.models === ANY)) return;
        ctx.set(filtering, kind);
        ctx.needResponseBody('BUFFERED');
        // The filtered list is shorter: upstream's length cannot stand.
        if (ctx.responseHeaders.has('content-length')) ctx.out.removeHeaders.push('content-length');
      },
      onResponseBody(ctx: RequestContext, body: Buffer, endOfStream: boolean): Buffer {
        const kind = ctx.get(filtering);
        if (kind === undefined || !endOfStream) return body;
        const principal = ctx.principal;
        const now = deps.clock.now();
        const mayUse = (model: unknown): boolean =>
          typeof model === 'string' &&
          principal !== undefined &&
          (principal.scope === undefined || principal.scope.models(model)) &&
          !killed(model) &&
          (judge === undefined || judge(principal, kind, model, now));
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

/** Whether the gate-wide policy and routing would let the caller chat with a model now (a plain
 * request: no data classes, no max_tokens), or undefined when neither is configured to run. */
function modelJudge(
  config: Config,
): ((principal: Principal, kind: 'openai' | 'ollama', model: string, nowMs: number) => boolean) | undefined {
  const stages = new Set(config.pipeline.stages);
  const engine = stages.has('policy.rules') ? new PolicyEngine(config) : undefined;
  const rules = engine?.active ? engine : undefined;
  const routing = stages.has('routing.route') ? new RoutingTable(config, { readCredentials: false }) : undefined;
  const routes = routing !== undefined && routing.routes.length > 0 ? routing : undefined;
  if (rules === undefined && routes === undefined) return undefined;
  const none: ReadonlySet<string> = new Set();
  return (principal, kind, asked, nowMs) => {
    let model = asked;
    let route: PolicyInput['route'];
    if (routes !== undefined) {
      const r = routes.resolve(asked, none, principal.attributes);
      if ('refusal' in r) return false;
      model = r.model;
      route = r.route?.choice;
    }
    if (rules === undefined) return true;
    const endpoint = kind === 'openai' ? 'openai.chat' : 'ollama.chat';
    const input: PolicyInput = {
      principal,
      request: {
        endpoint,
        model,
        stream: false,
        maxTokens: undefined,
        path: kind === 'openai' ? '/v1/chat/completions' : '/api/chat',
        method: 'POST',
      },
      dataClasses: none,
      route,
      nowMs,
    };
    const v = rules.decideFinal(input);
    return v === NO_RULES || v.effect === 'allow';
  };
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
