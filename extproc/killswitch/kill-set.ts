// What is killed: API keys (by key id), users, teams, tenants and models, each with why, when,
// by whom and until when. A KillSet is an immutable snapshot: the request path looks an id up
// in a Map and never sees one half-updated; a change makes a new snapshot and swaps it in
// (KillBoard), as a config reload swaps the pipeline.
import type { Clock } from '../pipeline/stage.ts';
import { modelKey } from '../policy/model-names.ts';

export const KILL_KINDS = ['key', 'user', 'team', 'tenant', 'model'] as const;
export type KillKind = (typeof KILL_KINDS)[number];

export function isKillKind(s: string): s is KillKind {
  return (KILL_KINDS as readonly string[]).includes(s);
}

export interface KillEntry {
  /** Why, for operators (`--reason`, "config reload"); never shown to clients. */
  readonly reason?: string | undefined;
  /** When it was killed, ms since the epoch. */
  readonly at: number;
  /** When it stops applying, ms since the epoch; absent: until lifted. */
  readonly expiresAt?: number | undefined;
  /** cli: `lm-gate kill`; config: a replica's config reload. A reload lifts only its own. */
  readonly source: 'cli' | 'config';
  /** Which host or user wrote it. */
  readonly by?: string | undefined;
}

/** An entry stops killing at expiresAt, by the clock of the replica judging the request. */
export function entryLive(e: KillEntry, clock: Clock): boolean {
  return e.expiresAt === undefined || clock.now() < e.expiresAt;
}

export type KillMaps = { readonly [K in KillKind]: ReadonlyMap<string, KillEntry> };

/** A KillSet as structured-clone data, for the worker protocol. */
export type KillSetData = { [K in KillKind]: [string, KillEntry][] };

const noEntries = (): Record<KillKind, Map<string, KillEntry>> => ({
  key: new Map(),
  user: new Map(),
  team: new Map(),
  tenant: new Map(),
  model: new Map(),
});

export class KillSet {
  static readonly EMPTY = new KillSet(noEntries());
  private readonly maps: KillMaps;
  /** No entry of any kind: the request path skips every lookup. */
  readonly empty: boolean;

  constructor(maps: KillMaps) {
    this.maps = maps;
    this.empty = KILL_KINDS.every((k) => maps[k].size === 0);
  }

  /** The entry that kills `id` now, or undefined. The clock is read only when an entry exists.
   * A model is found under every spelling its server resolves to it (model-names.ts). */
  find(kind: KillKind, id: string, clock: Clock): KillEntry | undefined {
    if (kind === 'model') {
      if (this.maps.model.size === 0) return undefined;
      const list = this.modelsByKey().get(modelKey(id));
      if (list !== undefined) for (const e of list) if (entryLive(e, clock)) return e;
      return undefined;
    }
    const e = this.maps[kind].get(id);
    return e !== undefined && entryLive(e, clock) ? e : undefined;
  }

  private byKey: Map<string, KillEntry[]> | undefined;

  /** The killed models by key, built on the first lookup (a set is never changed once built). */
  private modelsByKey(): Map<string, KillEntry[]> {
    if (this.byKey !== undefined) return this.byKey;
    const out = new Map<string, KillEntry[]>();
    for (const [id, e] of this.maps.model) {
      const key = modelKey(id);
      const list = out.get(key);
      if (list === undefined) out.set(key, [e]);
      else list.push(e);
    }
    this.byKey = out;
    return out;
  }

  get(kind: KillKind, id: string): KillEntry | undefined {
    return this.maps[kind].get(id);
  }

  size(kind: KillKind): number {
    return this.maps[kind].size;
  }

  *entries(): IterableIterator<[KillKind, string, KillEntry]> {
    for (const kind of KILL_KINDS) for (const [id, e] of this.maps[kind]) yield [kind, id, e];
  }

  /** The same entries (ids and every field), whatever the order they were added in. */
  sameAs(other: KillSet): boolean {
    if (other === this) return true;
    for (const kind of KILL_KINDS) {
      const a = this.maps[kind];
      const b = other.maps[kind];
      if (a.size !== b.size) return false;
      for (const [id, e] of a) {
        const f = b.get(id);
        if (
          f === undefined ||
          f.at !== e.at ||
          f.expiresAt !== e.expiresAt ||
          f.reason !== e.reason ||
          f.source !== e.source ||
          f.by !== e.by
        )
          return false;
      }
    }
    return true;
  }

  toData(): KillSetData {
    const out = {} as KillSetData;
    for (const kind of KILL_KINDS) out[kind] = [...this.maps[kind]];
    return out;
  }

  static fromData(data: KillSetData): KillSet {
    const maps = noEntries();
    for (const kind of KILL_KINDS) for (const [id, e] of data[kind]) maps[kind].set(id, e);
    return new KillSet(maps);
  }

  /** Plain ids of each kind, killed until lifted: a config's lists. */
  static fromIds(ids: { readonly [K in KillKind]?: Iterable<string> }, entry: KillEntry): KillSet {
    const maps = noEntries();
    for (const kind of KILL_KINDS) for (const id of ids[kind] ?? []) maps[kind].set(id, entry);
    return new KillSet(maps);
  }
}

/** A mutable builder of KillSets, for the code that follows Redis. */
export class KillSetBuilder {
  private readonly maps = noEntries();

  set(kind: KillKind, id: string, entry: KillEntry): void {
    this.maps[kind].set(id, entry);
  }

  delete(kind: KillKind, id: string): void {
    this.maps[kind].delete(id);
  }

  has(kind: KillKind, id: string): boolean {
    return this.maps[kind].has(id);
  }

  /** Entries of every kind. */
  get size(): number {
    let n = 0;
    for (const kind of KILL_KINDS) n += this.maps[kind].size;
    return n;
  }

  /** A snapshot of what was set so far; later changes do not reach it. */
  build(): KillSet {
    const maps = noEntries();
    for (const kind of KILL_KINDS) for (const [id, e] of this.maps[kind]) maps[kind].set(id, e);
    return new KillSet(maps);
  }
}

/** Where the request path finds the current KillSet of the shared (Redis) kill switch: one per
 * gate thread, replaced whole on every change, so a request reads one consistent snapshot. */
export class KillBoard {
  current: KillSet = KillSet.EMPTY;

  replace(next: KillSet): void {
    this.current = next;
  }
}
