// Refuses a model the kill switch disabled, for every caller, once the request body names it:
// 403 model_disabled with the rule id killSwitch.model.<model>. Runs right after the body is
// parsed, before the caller's own scope is judged: a killed model is refused whoever asks.
import type { RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { configKillSet, findKill, killDecision, killRuleId } from './config-kills.ts';

const NAME = 'killswitch.model';

export const killModel = defineStage({
  name: NAME,
  summary: 'Refuses a killed model (403) for every caller, from the config or Redis.',
  needs: ['parsed'],
  provides: [],
  create: (config, deps) => {
    const fromConfig = configKillSet(config);
    const board = deps.kills;
    const clock = deps.clock;
    return {
      onRequestBody(ctx: RequestContext): void {
        const model = ctx.modelRequested;
        if (model === undefined || (fromConfig.empty && board.current.empty)) return;
        const hit = findKill(fromConfig, board, 'model', model, clock);
        if (hit === undefined) return;
        ctx.decide(killDecision(NAME, 'model', model, hit));
        throw refuse('model_disabled', `The model "${model}" is disabled.`, { ruleId: killRuleId('model', model) });
      },
    };
  },
});
