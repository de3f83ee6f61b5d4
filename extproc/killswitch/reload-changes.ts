// What a config reload on one replica must tell the others through Redis, so they refuse within
// a second what this replica now refuses, before their own config (a ConfigMap or Secret mount,
// which Kubernetes may take a minute to update) catches up.
//
// Only transitions count, never a config as a whole: a replica that reloads with an older config
// for some other reason must not re-kill what the operator re-enabled since.
//
//   API key:  alive -> disabled, alive -> removed, absent -> listed in killSwitch.keys: kill;
//             disabled -> alive, absent -> alive (re-added): lift (only a kill a config reload
//             wrote: `lm-gate kill`'s stay until lifted by hand);
//             disabled -> removed: nothing, it stays killed.
//   user, team, tenant, model:  added to its killSwitch list: kill; taken off it: lift (same rule).
//
// A key is alive when it is in identity.apiKeys, not disabled and not in killSwitch.keys.
import type { Config } from '../config/schema.ts';
import type { KillKind } from './kill-set.ts';

export interface KillChange {
  op: 'kill' | 'lift';
  kind: KillKind;
  id: string;
}

type KeyState = 'alive' | 'dead' | 'absent';

function keyStates(c: Config): Map<string, KeyState> {
  const out = new Map<string, KeyState>();
  for (const k of c.identity.apiKeys) out.set(k.id, k.disabled ? 'dead' : 'alive');
  for (const id of c.killSwitch.keys) out.set(id, 'dead');
  return out;
}

const LISTS = [
  ['user', 'users'],
  ['team', 'teams'],
  ['tenant', 'tenants'],
  ['model', 'models'],
] as const;

export function configKillChanges(prev: Config, next: Config): KillChange[] {
  const out: KillChange[] = [];
  const before = keyStates(prev);
  const after = keyStates(next);
  for (const id of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(id) ?? 'absent';
    const b = after.get(id) ?? 'absent';
    if (a === b) continue;
    if (b === 'dead' || (a === 'alive' && b === 'absent')) out.push({ op: 'kill', kind: 'key', id });
    else if (b === 'alive') out.push({ op: 'lift', kind: 'key', id });
  }
  for (const [kind, list] of LISTS) {
    const was = new Set(prev.killSwitch[list]);
    const is = new Set(next.killSwitch[list]);
    for (const id of is) if (!was.has(id)) out.push({ op: 'kill', kind, id });
    for (const id of was) if (!is.has(id)) out.push({ op: 'lift', kind, id });
  }
  return out;
}
