// Refuses a model the kill switch disabled, for every caller, once the request body names it:
// 403 model_disabled with the rule id killSwitch.model.<model>. Runs after routing, before the
// caller's own scope is judged: a model is refused whether the request names it or an alias that
// routing resolved to it (and a killed alias name is refused too), whoever asks.
import type { RequestContext } from '../pipeline/context.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { configKillSet, findKill, killDecision, killRuleId } from './config-kills.ts';

const NAME = 'killswitch.model';

export const killModel = defineStage({
  name: NAME,
  summary: 'Refuses a killed model (403) for every caller, from the config or Redis, also when reached by an alias.',
  needs: ['parsed'],
  provides: [],
  create: (config, deps) => {
    const fromConfig = configKillSet(config);
    const board = deps.kills;
    const clock = deps.clock;
    const check = (ctx: RequestContext, model: string | undefined): void => {
      if (model === undefined) return;
      const hit = findKill(fromConfig, board, 'model', model, clock);
      if (hit === undefined) return;
      ctx.decide(killDecision(NAME, 'model', model, hit));
      deps.metrics.countPolicyDecision(killRuleId('model', model), 'deny');
      throw refuse('model_disabled', `The model "${model}" is disabled.`, { ruleId: killRuleId('model', model) });
    };
    return {
      onRequestBody(ctx: RequestContext): void {
        if (fromConfig.empty && board.current.empty) return;
        // The model that would serve (an alias's target once routing ran), then the name the
        // client wrote when it was an alias.
        check(ctx, ctx.modelRequested);
        check(ctx, ctx.modelAlias);
      },
    };
  },
});
