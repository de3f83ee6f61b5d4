// How one replica merges the snapshots and the messages it gets from Redis, in every order they
// can arrive in. Versions come from the counter every write in Redis bumps.
import { describe, expect, it } from 'vitest';
import type { KillEntry, KillKind } from './kill-set.ts';
import { type KillMessage, type KillSnapshot, ReplicaView } from './replica-view.ts';

const e = (at = 1, over: Partial<KillEntry> = {}): KillEntry => ({ at, source: 'cli', ...over });
const kill = (v: number, kind: KillKind, id: string, entry = e(v)): KillMessage => ({ v, op: 'kill', kind, id, entry });
const lift = (v: number, kind: KillKind, id: string): KillMessage => ({ v, op: 'lift', kind, id });
const inEpoch = (epoch: string | undefined, version: number, ...entries: [KillKind, string][]): KillSnapshot => ({
  version,
  epoch,
  entries: entries.map(([k, id]) => [k, id, e(0)]),
});
const snap = (version: number, ...entries: [KillKind, string][]): KillSnapshot => ({
  version,
  epoch: 'e1',
  entries: entries.map(([k, id]) => [k, id, e(0)]),
});
const view = (now = 0) => new ReplicaView({ clock: { now: () => now }, maxEntries: 100 });
const ids = (v: ReplicaView) => [...v.current.entries()].map(([k, id]) => `${k}:${id}`).sort();

describe('ReplicaView', () => {
  it('a message applies at once, also before the first snapshot', () => {
    const v = view();
    expect(v.applyMessage(kill(1, 'user', 'mallory'))).toEqual({ changed: true, resync: false });
    expect(ids(v)).toEqual(['user:mallory']);
  });

  it('a snapshot replaces the view', () => {
    const v = view();
    v.applyMessage(kill(1, 'user', 'a'));
    expect(v.applySnapshot(snap(3, ['team', 't'])).changed).toBe(true);
    expect(ids(v)).toEqual(['team:t']);
    expect(v.applySnapshot(snap(3, ['team', 't'])).changed).toBe(false);
  });

  it('a kill announced after the snapshot was read survives that snapshot arriving late', () => {
    const v = view();
    v.applySnapshot(snap(4));
    // Resync sent; meanwhile kill v5 is written and its message arrives first.
    v.applyMessage(kill(5, 'key', 'k'));
    // The snapshot read before v5 arrives afterwards.
    v.applySnapshot(snap(4));
    expect(ids(v)).toEqual(['key:k']);
    // A later snapshot that has it takes over, and the message is no longer needed.
    v.applySnapshot(snap(5, ['key', 'k']));
    v.applySnapshot(snap(6));
    expect(ids(v)).toEqual([]);
  });

  it('a lift announced after the snapshot was read is not undone by it either', () => {
    const v = view();
    v.applySnapshot(snap(4, ['model', 'm']));
    v.applyMessage(lift(5, 'model', 'm'));
    v.applySnapshot(snap(4, ['model', 'm']));
    expect(ids(v)).toEqual([]);
  });

  it('a message the snapshot already covers is ignored: a late kill does not undo a later lift', () => {
    const v = view();
    // Snapshot at v10: kill v9 then lift v10 both happened; the v9 message arrives late.
    v.applySnapshot(snap(10));
    expect(v.applyMessage(kill(9, 'user', 'u'))).toEqual({ changed: false, resync: true });
    expect(ids(v)).toEqual([]);
    // One it agrees with asks for nothing.
    v.applySnapshot(snap(11, ['team', 't']));
    expect(v.applyMessage(kill(11, 'team', 't'))).toEqual({ changed: false, resync: false });
  });

  it('a gap in the versions means a message was missed: resync now', () => {
    const v = view();
    v.applySnapshot(snap(2));
    expect(v.applyMessage(kill(3, 'user', 'a')).resync).toBe(false);
    expect(v.applyMessage(kill(5, 'user', 'b')).resync).toBe(true);
    expect(ids(v)).toEqual(['user:a', 'user:b']);
  });

  it('keeps a bounded number of messages, and asks for a snapshot when it drops one', () => {
    const v = new ReplicaView({ clock: { now: () => 0 }, maxEntries: 100, maxDeltas: 3 });
    v.applySnapshot(snap(0));
    const results = [1, 2, 3, 4].map((n) => v.applyMessage(kill(n, 'user', `u${n}`)));
    expect(results.map((r) => r.resync)).toEqual([false, false, false, true]);
    expect(ids(v)).toEqual(['user:u1', 'user:u2', 'user:u3', 'user:u4']);
  });

  it('Redis that lost its data (the version went back) does not empty the view: its live entries are handed back', () => {
    const v = view(5000);
    v.applySnapshot(snap(7, ['user', 'u']));
    v.applyMessage(kill(8, 'key', 'k'));
    v.applyMessage(kill(9, 'model', 'gone', e(9, { expiresAt: 4000 })));
    const r = v.applySnapshot(snap(0));
    expect(r.changed).toBe(false);
    expect(r.restore.map(([k, id]) => `${k}:${id}`).sort()).toEqual(['key:k', 'user:u']);
    expect(ids(v)).toEqual(['key:k', 'model:gone', 'user:u']);
    // Once written back, the next snapshot (a new, lower count) is taken as it is.
    const after = v.applySnapshot(snap(2, ['user', 'u'], ['key', 'k']));
    expect(after.restore).toEqual([]);
    expect(ids(v)).toEqual(['key:k', 'user:u']);
    expect(v.version).toBe(2);
  });

  it('Redis restarted empty and written to since (the count climbed back): the new epoch says it lost data', () => {
    const v = view();
    v.applySnapshot(inEpoch('e1', 1, ['team', 'red']));
    // Another replica's pending write landed first in the new Redis: version 1 again.
    const r = v.applySnapshot(inEpoch('e2', 1, ['key', 'ci']));
    expect(r.restore.map(([k, id]) => `${k}:${id}`)).toEqual(['team:red']);
    expect(ids(v)).toEqual(['team:red']);
    // Written back: taken as it is, in the new epoch.
    expect(v.applySnapshot(inEpoch('e2', 2, ['key', 'ci'], ['team', 'red'])).restore).toEqual([]);
    expect(ids(v)).toEqual(['key:ci', 'team:red']);
    expect(v.applySnapshot(inEpoch('e2', 3, ['key', 'ci'])).restore).toEqual([]);
    expect(ids(v)).toEqual(['key:ci']);
  });

  it('a replica that saw Redis only empty learns the epoch from the first message, and so still sees the loss', () => {
    const v = view();
    v.applySnapshot(inEpoch(undefined, 0));
    v.applyMessage({ ...kill(1, 'team', 'red'), e: 'e1' });
    // Redis restarts empty; another replica's write makes version 1 of epoch e2.
    const r = v.applySnapshot(inEpoch('e2', 1, ['key', 'ci']));
    expect(r.restore.map(([k, id]) => `${k}:${id}`)).toEqual(['team:red']);
    expect(ids(v)).toEqual(['team:red']);
  });

  it('a message of another epoch is not applied: the snapshot it asks for settles what Redis holds', () => {
    const v = view();
    v.applySnapshot(inEpoch('e1', 5, ['user', 'u']));
    expect(v.applyMessage({ ...kill(1, 'user', 'x'), e: 'e2' })).toEqual({ changed: false, resync: true });
    expect(ids(v)).toEqual(['user:u']);
  });

  it('the first write to an empty Redis sets the epoch: not a loss', () => {
    const v = view();
    v.applySnapshot(inEpoch(undefined, 0));
    expect(v.applySnapshot(inEpoch('e1', 1, ['user', 'u'])).restore).toEqual([]);
    expect(ids(v)).toEqual(['user:u']);
  });

  it('a lower version with nothing this replica would lose is simply taken', () => {
    const v = view();
    v.applySnapshot(snap(7));
    expect(v.applySnapshot(snap(1, ['user', 'x'])).restore).toEqual([]);
    expect(ids(v)).toEqual(['user:x']);
  });

  it('a snapshot at maxEntries does not take on kills that arrived while it was read beyond them', () => {
    const v = new ReplicaView({ clock: { now: () => 0 }, maxEntries: 2 });
    v.applySnapshot(snap(1, ['user', 'u1']));
    // u2 was missed; u3 arrives while a snapshot with u1 and u2 is read.
    v.applyMessage(kill(3, 'user', 'u3'));
    v.applySnapshot(snap(2, ['user', 'u1'], ['user', 'u2']));
    expect(ids(v)).toEqual(['user:u1', 'user:u2']);
  });

  it('holds at most maxEntries: a kill beyond them is not applied and says so', () => {
    const v = new ReplicaView({ clock: { now: () => 0 }, maxEntries: 2 });
    v.applySnapshot(snap(0));
    v.applyMessage(kill(1, 'user', 'a'));
    v.applyMessage(kill(2, 'user', 'b'));
    expect(v.applyMessage(kill(3, 'user', 'c'))).toEqual({ changed: false, resync: false, overflow: true });
    // A kill of an id it holds (a new reason, a new expiry) still applies, and so do lifts.
    expect(v.applyMessage(kill(4, 'user', 'a', e(4, { reason: 'again' }))).changed).toBe(true);
    v.applyMessage(lift(5, 'user', 'b'));
    expect(v.applyMessage(kill(6, 'user', 'c')).changed).toBe(true);
    expect(ids(v)).toEqual(['user:a', 'user:c']);
  });
});
