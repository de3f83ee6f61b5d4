// Refuses a caller the kill switch disabled, right after identity and before anything else reads
// the request: a killed API key gets exactly the 401 an unknown key gets (same code, message and
// headers, and before any 400/404/415 a valid key could provoke), so its holder cannot tell it
// was killed rather than revoked; a killed user, team or tenant gets 403 principal_disabled
// naming the rule (killSwitch.<kind>.<id>). Kills come from this config and from the kill set
// shared through Redis (deps.kills); both are in-memory Map lookups, no Redis call per request.
import type { RequestContext } from '../pipeline/context.ts';
import { internalError, refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { configKillSet, findKill, killDecision, killRuleId } from './config-kills.ts';
import type { KillKind } from './kill-set.ts';

const NAME = 'killswitch.principal';

/** What identity.authenticate answers for a key it does not know. */
export const UNKNOWN_KEY_MESSAGE = 'Invalid API key.';

const WHO: Record<Exclude<KillKind, 'key' | 'model'>, string> = {
  user: 'This caller is disabled.',
  team: "This caller's team is disabled.",
  tenant: "This caller's tenant is disabled.",
};

export const killPrincipal = defineStage({
  name: NAME,
  summary: 'Refuses a killed API key (401, as if unknown), user, team or tenant (403), from the config or Redis.',
  needs: ['principal'],
  provides: [],
  create: (config, deps) => {
    const fromConfig = configKillSet(config);
    const board = deps.kills;
    const clock = deps.clock;
    const check = (ctx: RequestContext, kind: Exclude<KillKind, 'key' | 'model'>, id: string | undefined): void => {
      if (id === undefined) return;
      const hit = findKill(fromConfig, board, kind, id, clock);
      if (hit === undefined) return;
      ctx.decide(killDecision(NAME, kind, id, hit));
      deps.metrics.countPolicyDecision(killRuleId(kind, id), 'deny');
      throw refuse('principal_disabled', WHO[kind], { ruleId: killRuleId(kind, id) });
    };
    return {
      onRequestHeaders(ctx: RequestContext): void {
        const p = ctx.principal;
        // Identity runs first and refuses anonymous callers; no principal here is a pipeline
        // bug, and the kill switch fails closed.
        if (p === undefined) throw internalError();
        if (fromConfig.empty && board.current.empty) return;
        if (p.method === 'api_key') {
          const hit = findKill(fromConfig, board, 'key', p.id, clock);
          if (hit !== undefined) {
            ctx.decide(killDecision(NAME, 'key', p.id, hit));
            deps.metrics.countPolicyDecision(killRuleId('key', p.id), 'deny');
            throw refuse('invalid_api_key', UNKNOWN_KEY_MESSAGE);
          }
        }
        check(ctx, 'user', p.user);
        check(ctx, 'team', p.team);
        check(ctx, 'tenant', p.tenant);
      },
    };
  },
});
