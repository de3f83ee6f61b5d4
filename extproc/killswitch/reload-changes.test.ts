// What a config reload on one replica tells the others: one row per transition.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { configKillChanges, type KillChange } from './reload-changes.ts';

const H = (c: string) => c.repeat(64);
const key = (id: string, hash: string, disabled = false) => ({ id, sha256: H(hash), tenant: 't', disabled });
const cfg = (keys: object[], killSwitch: object = {}) =>
  parseConfig(JSON.stringify({ identity: { apiKeys: keys }, killSwitch }), 'x', {});

const rows: { name: string; before: ReturnType<typeof cfg>; after: ReturnType<typeof cfg>; want: KillChange[] }[] = [
  { name: 'nothing changed', before: cfg([key('a', 'a')]), after: cfg([key('a', 'a')]), want: [] },
  {
    name: 'a key disabled is killed',
    before: cfg([key('a', 'a')]),
    after: cfg([key('a', 'a', true)]),
    want: [{ op: 'kill', kind: 'key', id: 'a' }],
  },
  {
    name: 'a key removed is killed (removal is a revocation)',
    before: cfg([key('a', 'a'), key('b', 'b')]),
    after: cfg([key('b', 'b')]),
    want: [{ op: 'kill', kind: 'key', id: 'a' }],
  },
  {
    name: 'a key listed in killSwitch.keys is killed',
    before: cfg([key('a', 'a')]),
    after: cfg([key('a', 'a')], { keys: ['a'] }),
    want: [{ op: 'kill', kind: 'key', id: 'a' }],
  },
  {
    name: 'a key id listed that this config does not hold is killed (it may live elsewhere)',
    before: cfg([]),
    after: cfg([], { keys: ['elsewhere'] }),
    want: [{ op: 'kill', kind: 'key', id: 'elsewhere' }],
  },
  {
    name: 'a key enabled again is lifted',
    before: cfg([key('a', 'a', true)]),
    after: cfg([key('a', 'a')]),
    want: [{ op: 'lift', kind: 'key', id: 'a' }],
  },
  {
    name: 'a key added (or re-added under a new secret) is lifted, in case a reload killed its id',
    before: cfg([]),
    after: cfg([key('a', 'b')]),
    want: [{ op: 'lift', kind: 'key', id: 'a' }],
  },
  {
    name: 'a disabled key removed stays killed: nothing to say',
    before: cfg([key('a', 'a', true)]),
    after: cfg([]),
    want: [],
  },
  {
    name: 'a disabled key whose secret changed stays killed: nothing to say',
    before: cfg([key('a', 'a', true)]),
    after: cfg([key('a', 'b', true)]),
    want: [],
  },
  {
    name: 'users, teams, tenants and models: added is killed, taken off is lifted',
    before: cfg([], { users: ['u1'], teams: ['t1'], models: ['m1'] }),
    after: cfg([], { users: ['u2'], teams: ['t1'], tenants: ['x'] }),
    want: [
      { op: 'kill', kind: 'user', id: 'u2' },
      { op: 'lift', kind: 'user', id: 'u1' },
      { op: 'kill', kind: 'tenant', id: 'x' },
      { op: 'lift', kind: 'model', id: 'm1' },
    ],
  },
];

describe('configKillChanges', () => {
  for (const r of rows) it(r.name, () => expect(configKillChanges(r.before, r.after)).toEqual(r.want));
});
