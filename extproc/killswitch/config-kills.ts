// What one config kills by itself, and how a kill is named in decisions and refusals, shared by
// the kill switch's two stages.
import type { Config } from '../config/schema.ts';
import type { Decision } from '../pipeline/context.ts';
import type { Clock } from '../pipeline/stage.ts';
import { type KillBoard, type KillEntry, type KillKind, KillSet } from './kill-set.ts';

const FROM_CONFIG: KillEntry = { at: 0, source: 'config', reason: 'listed in the config' };

/** The config's killSwitch lists, and its disabled API keys (which identity refuses already;
 * listed so a key is refused here too whatever identity does). Built once per snapshot. */
export function configKillSet(config: Config): KillSet {
  const k = config.killSwitch;
  return KillSet.fromIds(
    {
      key: [...k.keys, ...config.identity.apiKeys.filter((e) => e.disabled).map((e) => e.id)],
      user: k.users,
      team: k.teams,
      tenant: k.tenants,
      model: k.models,
    },
    FROM_CONFIG,
  );
}

/** killSwitch.<kind>.<id>: the rule id of a refusal and of its decision. */
export function killRuleId(kind: KillKind, id: string): string {
  return `killSwitch.${kind}.${id}`;
}

/** The config's entry or the shared one that kills `id` now, the config's first. */
export function findKill(
  fromConfig: KillSet,
  board: KillBoard,
  kind: KillKind,
  id: string,
  clock: Clock,
): { entry: KillEntry; where: 'config' | 'redis' } | undefined {
  const c = fromConfig.find(kind, id, clock);
  if (c !== undefined) return { entry: c, where: 'config' };
  const r = board.current.find(kind, id, clock);
  return r === undefined ? undefined : { entry: r, where: 'redis' };
}

/** The audit's account of a kill: where it came from and the operator's reason. */
export function killDecision(
  stage: string,
  kind: KillKind,
  id: string,
  hit: { entry: KillEntry; where: 'config' | 'redis' },
): Decision {
  const e = hit.entry;
  const origin =
    hit.where === 'config'
      ? "this replica's config"
      : e.source === 'cli'
        ? `lm-gate kill${e.by ? ` by ${e.by}` : ''}`
        : `a config reload${e.by ? ` on ${e.by}` : ''}`;
  return {
    stage,
    ruleId: killRuleId(kind, id),
    effect: 'deny',
    reason: `killed (${origin})${e.reason && hit.where === 'redis' ? `: ${e.reason}` : ''}`,
  };
}
