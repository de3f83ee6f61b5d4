// The kill set in Redis. One hash per kind, field = id, value = the entry as JSON:
//
//   <prefix>{kill}:key  <prefix>{kill}:user  <prefix>{kill}:team  <prefix>{kill}:tenant
//   <prefix>{kill}:model
//   <prefix>{kill}:version   a counter every write bumps
//   <prefix>kill:events      the channel each write is announced on
//
// Every write is one Lua script: change the hash, bump the version, PUBLISH the change with that
// version. Atomic, so a message and a snapshot can always be ordered (replica-view.ts), and a
// writer that dies half-way leaves nothing half-done. The {kill} hash tag keeps all the keys in
// one Cluster slot, as a multi-key script needs.
//
//   <prefix>{kill}:epoch     a random id the first write sets: a Redis that lost its data (restarted
//                            without persistence, flushed) has another, and replicas write back
//                            what they held
//
// Entries carry their expiry; Redis 7.0 has no per-field TTL, so readers ignore an expired
// entry and replicas delete it at resync (only if it is still the expired one).
import { randomBytes } from 'node:crypto';
import type { RedisKeyspace } from '../redis/connection.ts';
import { isKillKind, KILL_KINDS, type KillEntry, type KillKind } from './kill-set.ts';
import type { KillMessage, KillSnapshot } from './replica-view.ts';

// KEYS: hash, version, epoch. ARGV: id, entry JSON, channel, kind, nx ("1": only if absent),
// epoch candidate. Returns the new version, or 0.
const KILL = `
if ARGV[5] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('SET', KEYS[3], ARGV[6], 'NX')
local e = redis.call('GET', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], '{"v":' .. v .. ',"e":' .. cjson.encode(e) .. ',"op":"kill","kind":"' .. ARGV[4] .. '","id":' .. cjson.encode(ARGV[1]) .. ',"entry":' .. ARGV[2] .. '}')
return v
`;

// KEYS: hash, version, epoch. ARGV: id, channel, kind, condition ("any" | "source:<s>" |
// "expired:<now ms>"), epoch candidate. Returns the new version, or 0 when there was nothing
// (matching) to lift.
const LIFT = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local cond = ARGV[4]
if cond ~= 'any' then
  local ok, e = pcall(cjson.decode, cur)
  if not ok or type(e) ~= 'table' then return 0 end
  if string.sub(cond, 1, 7) == 'source:' then
    if e.source ~= string.sub(cond, 8) then return 0 end
  elseif string.sub(cond, 1, 8) == 'expired:' then
    if type(e.expiresAt) ~= 'number' or e.expiresAt > tonumber(string.sub(cond, 9)) then return 0 end
  else
    return 0
  end
end
redis.call('SET', KEYS[3], ARGV[5], 'NX')
local e = redis.call('GET', KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], '{"v":' .. v .. ',"e":' .. cjson.encode(e) .. ',"op":"lift","kind":"' .. ARGV[3] .. '","id":' .. cjson.encode(ARGV[1]) .. '}')
return v
`;

// KEYS: the five hashes, the version, the epoch. ARGV: the most entries to return. One atomic
// read, refused (not truncated) above the bound, so the event loop never parses an unbounded
// reply. Returns { version, epoch or '', hash 1, ..., hash 5 }.
const SNAPSHOT = `
local total = 0
for i = 1, 5 do total = total + redis.call('HLEN', KEYS[i]) end
if total > tonumber(ARGV[1]) then return redis.error_reply('LMGATE_TOO_MANY ' .. total) end
local out = { redis.call('GET', KEYS[6]) or '0', redis.call('GET', KEYS[7]) or '' }
for i = 1, 5 do out[i + 2] = redis.call('HGETALL', KEYS[i]) end
return out
`;

export type LiftCondition = 'any' | `source:${KillEntry['source']}` | `expired:${number}`;

type Scripted = {
  lmgateKill(hash: string, version: string, epoch: string, ...argv: string[]): Promise<number>;
  lmgateLift(hash: string, version: string, epoch: string, ...argv: string[]): Promise<number>;
  lmgateKillSnapshot(...keysAndArgv: string[]): Promise<unknown>;
};

export class TooManyEntries extends Error {
  readonly total: number;
  constructor(total: number) {
    super(`the kill set in Redis has ${total} entries, more than killSwitch.maxEntries`);
    this.name = 'TooManyEntries';
    this.total = total;
  }
}

export class RedisKillStore {
  private readonly conn: RedisKeyspace;
  private readonly scripted: Scripted;
  readonly channel: string;
  private readonly versionKey: string;
  private readonly epochKey: string;

  constructor(conn: RedisKeyspace) {
    this.conn = conn;
    this.channel = conn.key('kill:events');
    this.versionKey = conn.key('{kill}:version');
    this.epochKey = conn.key('{kill}:epoch');
    const client = conn.client;
    if (!('lmgateKill' in client)) {
      client.defineCommand('lmgateKill', { numberOfKeys: 3, lua: KILL });
      client.defineCommand('lmgateLift', { numberOfKeys: 3, lua: LIFT });
      client.defineCommand('lmgateKillSnapshot', { numberOfKeys: 7, lua: SNAPSHOT });
    }
    this.scripted = client as unknown as Scripted;
  }

  hash(kind: KillKind): string {
    return this.conn.key(`{kill}:${kind}`);
  }

  /** Writes the entry and announces it; with nx only where the id has none. Returns the new
   * version, or 0 when nx found one. */
  kill(kind: KillKind, id: string, entry: KillEntry, opts: { nx?: boolean } = {}): Promise<number> {
    return this.scripted.lmgateKill(
      this.hash(kind),
      this.versionKey,
      this.epochKey,
      id,
      JSON.stringify(entry),
      this.channel,
      kind,
      opts.nx ? '1' : '0',
      newEpoch(),
    );
  }

  /** Deletes the entry (if the condition holds) and announces it. Returns the new version, or
   * 0 when there was nothing to lift. */
  lift(kind: KillKind, id: string, condition: LiftCondition = 'any'): Promise<number> {
    return this.scripted.lmgateLift(
      this.hash(kind),
      this.versionKey,
      this.epochKey,
      id,
      this.channel,
      kind,
      condition,
      newEpoch(),
    );
  }

  async snapshot(maxEntries: number): Promise<KillSnapshot> {
    let reply: unknown;
    try {
      reply = await this.scripted.lmgateKillSnapshot(
        ...KILL_KINDS.map((k) => this.hash(k)),
        this.versionKey,
        this.epochKey,
        String(maxEntries),
      );
    } catch (err) {
      const m = /LMGATE_TOO_MANY (\d+)/.exec((err as Error).message);
      if (m) throw new TooManyEntries(Number(m[1]));
      throw err;
    }
    if (!Array.isArray(reply) || reply.length !== KILL_KINDS.length + 2) throw new Error('unexpected snapshot reply');
    const entries: KillSnapshot['entries'] = [];
    KILL_KINDS.forEach((kind, i) => {
      const flat = reply[i + 2] as unknown[];
      for (let j = 0; j + 1 < flat.length; j += 2)
        entries.push([kind, String(flat[j]), parseEntry(String(flat[j + 1]))]);
    });
    const epoch = String(reply[1]);
    return { version: Number(reply[0]) || 0, epoch: epoch === '' ? undefined : epoch, entries };
  }
}

/** A candidate epoch id; only the first write to an empty Redis sets it. */
function newEpoch(): string {
  return randomBytes(8).toString('hex');
}

const UNREADABLE: KillEntry = { at: 0, source: 'cli', reason: '(unreadable entry: killed until lifted)' };

/** An entry as stored. A value that is not one still kills its id (fail closed): whatever put
 * it in the kill hash meant to kill. */
export function parseEntry(raw: string): KillEntry {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return UNREADABLE;
  }
  return entryFrom(v) ?? UNREADABLE;
}

function entryFrom(v: unknown): KillEntry | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.at !== 'number' || (o.source !== 'cli' && o.source !== 'config')) return undefined;
  if (o.expiresAt !== undefined && typeof o.expiresAt !== 'number') return undefined;
  return {
    at: o.at,
    source: o.source,
    ...(typeof o.reason === 'string' ? { reason: o.reason.slice(0, 500) } : {}),
    ...(typeof o.expiresAt === 'number' ? { expiresAt: o.expiresAt } : {}),
    ...(typeof o.by === 'string' ? { by: o.by.slice(0, 200) } : {}),
  };
}

/** A message from the channel, or undefined when it is not one of ours. A kill whose entry is
 * unreadable still kills. */
export function parseMessage(raw: string): KillMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.v !== 'number' || !Number.isSafeInteger(o.v) || typeof o.id !== 'string') return undefined;
  if (typeof o.kind !== 'string' || !isKillKind(o.kind)) return undefined;
  const e = typeof o.e === 'string' ? { e: o.e.slice(0, 64) } : {};
  if (o.op === 'lift') return { v: o.v, ...e, op: 'lift', kind: o.kind, id: o.id };
  if (o.op === 'kill')
    return { v: o.v, ...e, op: 'kill', kind: o.kind, id: o.id, entry: entryFrom(o.entry) ?? UNREADABLE };
  return undefined;
}
