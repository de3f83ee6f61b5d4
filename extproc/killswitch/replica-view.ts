// One replica's view of the kill set kept in Redis, from two sources that can arrive in any
// order: snapshots (the periodic resync reads every entry at once) and messages (each kill or
// lift is PUBLISHed). Every write in Redis bumps one version counter in the same atomic script
// that writes the entry and publishes the message, and both carry that version, so:
//
// - a message at or below the last snapshot's version is already in it and is ignored (the
//   snapshot's connection and the subscriber's are different sockets: a message can arrive
//   after a snapshot taken after it);
// - a message above it is applied at once and kept until a snapshot covers it, so a snapshot
//   read just before a kill cannot undo that kill when its reply comes in late;
// - a gap in the versions means a message was missed: resync now rather than at the next tick;
// - a snapshot of another epoch (the random id the first write to an empty Redis sets) or
//   whose version went backwards means Redis lost its data (restarted without persistence,
//   flushed), even when writes since have counted the version up again: the view is not
//   emptied; its live entries are handed back to be written again, and the view keeps applying
//   meanwhile.
//
// Pure: no I/O and no timers; redis-feed.ts does those.
import type { Clock } from '../pipeline/stage.ts';
import { entryLive, type KillEntry, type KillKind, KillSet, KillSetBuilder } from './kill-set.ts';

export interface KillMessage {
  /** The version the write that published it produced. */
  v: number;
  /** The epoch it was written in. */
  e?: string | undefined;
  op: 'kill' | 'lift';
  kind: KillKind;
  id: string;
  /** With op kill. */
  entry?: KillEntry | undefined;
}

export interface KillSnapshot {
  /** The version counter when the snapshot was read; 0 when Redis has none. */
  version: number;
  /** The epoch id; undefined while nothing was ever written. */
  epoch: string | undefined;
  entries: [KillKind, string, KillEntry][];
}

export interface MessageResult {
  changed: boolean;
  /** Read a snapshot now: a message was missed, or the view disagrees with Redis. */
  resync: boolean;
  /** A kill not applied: the view holds maxEntries already. */
  overflow?: boolean;
}

export interface SnapshotResult {
  changed: boolean;
  /** Redis lost entries this view still holds: write these back (only where absent), then
   * resync. The view is left as it was meanwhile. Empty when nothing was lost. */
  restore: [KillKind, string, KillEntry][];
}

export class ReplicaView {
  private readonly maxDeltas: number;
  private readonly maxEntries: number;
  private entryCount = 0;
  private readonly clock: Clock;
  private working = new KillSetBuilder();
  /** Messages above the last snapshot's version, in arrival order. */
  private deltas: KillMessage[] = [];
  /** undefined until the first snapshot. */
  private snapshotVersion: number | undefined;
  private epoch: string | undefined;
  private highest = 0;
  current: KillSet = KillSet.EMPTY;

  /** maxEntries bounds the view whatever arrives: a snapshot over it is refused by Redis
   * itself (redis-store.ts), a kill message over it is not applied. */
  constructor(opts: { clock: Clock; maxEntries: number; maxDeltas?: number }) {
    this.clock = opts.clock;
    this.maxEntries = opts.maxEntries;
    this.maxDeltas = opts.maxDeltas ?? 1024;
  }

  /** The version of the last snapshot applied, or undefined before the first. */
  get version(): number | undefined {
    return this.snapshotVersion;
  }

  applyMessage(m: KillMessage): MessageResult {
    // The first write to an empty Redis sets the epoch: a view that has only seen Redis empty
    // learns it here, so a loss before its next snapshot is still recognised.
    let otherEpoch = false;
    if (m.e !== undefined) {
      if (this.epoch === undefined) this.epoch = m.e;
      else otherEpoch = m.e !== this.epoch;
    }
    if (otherEpoch) return { changed: false, resync: true };
    if (this.snapshotVersion !== undefined && m.v <= this.snapshotVersion) {
      // Already covered by the snapshot, unless Redis lost its data and counts again from 1: a
      // message the view disagrees with says so, and the next snapshot will tell.
      const present = this.current.get(m.kind, m.id) !== undefined;
      return { changed: false, resync: (m.op === 'kill') !== present };
    }
    if (m.op === 'kill' && this.entryCount >= this.maxEntries && this.current.get(m.kind, m.id) === undefined)
      return { changed: false, resync: false, overflow: true };
    const gap = this.highest > 0 && m.v > this.highest + 1;
    this.highest = Math.max(this.highest, m.v);
    this.deltas.push(m);
    let resync = gap;
    if (this.deltas.length > this.maxDeltas) {
      // Bounded: the oldest is dropped, and a snapshot (which has it) is asked for.
      this.deltas.shift();
      resync = true;
    }
    apply(this.working, m);
    return { changed: this.publish(), resync };
  }

  applySnapshot(s: KillSnapshot): SnapshotResult {
    const regressed =
      (this.epoch !== undefined && s.epoch !== this.epoch) ||
      (this.snapshotVersion !== undefined && s.version < this.snapshotVersion);
    if (regressed) {
      const have = new KillSetBuilder();
      for (const [kind, id, e] of s.entries) have.set(kind, id, e);
      const inRedis = have.build();
      const restore: [KillKind, string, KillEntry][] = [];
      for (const [kind, id, e] of this.current.entries())
        if (entryLive(e, this.clock) && inRedis.get(kind, id) === undefined) restore.push([kind, id, e]);
      if (restore.length > 0) return { changed: false, restore };
    }
    const next = new KillSetBuilder();
    for (const [kind, id, e] of s.entries) next.set(kind, id, e);
    // Messages counted before Redis started counting again are of another epoch: the snapshot
    // (after the restore) is the whole truth.
    this.deltas = regressed ? [] : this.deltas.filter((m) => m.v > s.version);
    // Redis refuses a snapshot over maxEntries; kills that arrived while it was read may not take
    // the view past it either (the next snapshot, refused, says so).
    this.deltas = this.deltas.filter((m) => {
      if (m.op === 'kill' && !next.has(m.kind, m.id) && next.size >= this.maxEntries) return false;
      apply(next, m);
      return true;
    });
    this.working = next;
    this.snapshotVersion = s.version;
    this.epoch = s.epoch;
    this.highest = Math.max(s.version, ...this.deltas.map((m) => m.v));
    return { changed: this.publish(), restore: [] };
  }

  private publish(): boolean {
    const next = this.working.build();
    if (next.sameAs(this.current)) return false;
    this.current = next;
    this.entryCount = 0;
    for (const _ of next.entries()) this.entryCount++;
    return true;
  }
}

function apply(b: KillSetBuilder, m: KillMessage): void {
  if (m.op === 'kill' && m.entry !== undefined) b.set(m.kind, m.id, m.entry);
  else if (m.op === 'lift') b.delete(m.kind, m.id);
}
