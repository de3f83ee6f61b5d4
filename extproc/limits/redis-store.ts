// Counters in Redis, shared by every replica. Each acquire (all the counters of one request) and
// each adjust is ONE Lua script call, so concurrent replicas cannot interleave between the check
// and the update of any level: a limit of 100 a minute across any number of replicas admits 100.
// The script mirrors counters.ts line for line and reads Redis's own clock (TIME), so replicas
// whose clocks differ still agree. ioredis sends it by EVALSHA and falls back to EVAL on NOSCRIPT
// (a restarted or flushed Redis).
//
// Key names carry a Redis Cluster hash tag (levels.ts): the caller's levels share {t:<tenant>},
// model and route limits have their own. On a Cluster the counters of one request that live in
// different slots are acquired one slot after the other, and the slots already taken are refunded
// when a later one refuses: never more admitted than one call would admit, but a concurrent
// request may briefly see the refunded units taken (and be refused for them).
import { isCluster, type RedisKeyspace } from '../redis/connection.ts';
import type { CounterItem } from './counters.ts';
import type { AcquireResult, AdjustResult, LimitStore } from './store.ts';

// KEYS: the counters. ARGV[1]: 'a' (acquire: all or nothing) or 'j' (adjust); then per key:
// kind ('r' rate | 'b' budget), limit, period (rate: ms; budget: period end, epoch ms), queue
// (rate: ms a request may wait for its turn; budget: 0), cost or delta. Returns { admitted (1/0), now ms, denied index (0-based, -1), state 1, ..., state n }
// ('' for none); for 'j' the states before, then after.
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local cache = {}
local function get(k)
  if cache[k] ~= nil then return cache[k] or nil end
  local v = redis.call('GET', k)
  if v then v = tonumber(v) else v = nil end
  cache[k] = v or false
  return v
end
local function admit(kind, limit, period, queue, cost, s)
  if kind == 'r' then
    local per = period / limit
    local tat = s
    if tat == nil or tat < now then tat = now end
    local nx = tat + cost * per
    if nx - now <= period then return nx end
    if queue > 0 and nx - now <= period + queue and cost * per <= period then return nx end
    return nil
  end
  local spent = s or 0
  if spent < limit then return spent + cost end
  return nil
end
local function adj(kind, limit, period, d, s)
  if kind == 'r' then
    local per = period / limit
    local tat = s
    if tat == nil or tat < now then tat = now end
    local nx = tat + d * per
    if nx <= now then return nil end
    return nx
  end
  local nx = (s or 0) + d
  if nx <= 0 then return nil end
  return nx
end
local function put(k, kind, period, v)
  cache[k] = v or false
  if v == nil then redis.call('DEL', k) return end
  local exp = period
  if kind == 'r' then exp = math.ceil(v) end
  if exp <= now then redis.call('DEL', k) return end
  redis.call('SET', k, string.format('%.17g', v), 'PXAT', exp)
end
local function fmt(v) if v == nil then return '' end return string.format('%.17g', v) end
local out = {}
if ARGV[1] == 'a' then
  local next = {}
  for i = 1, n do
    local b = 2 + (i - 1) * 5
    local kind, limit, period, queue, cost = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    local v = admit(kind, limit, period, queue, cost, get(KEYS[i]))
    if v == nil then
      out[1] = 0
      out[2] = now
      out[3] = i - 1
      cache = {}
      for j = 1, n do out[3 + j] = fmt(get(KEYS[j])) end
      return out
    end
    -- seen by a later item on the same key, not yet written
    cache[KEYS[i]] = v
    next[i] = v
  end
  for i = 1, n do
    local b = 2 + (i - 1) * 5
    put(KEYS[i], ARGV[b], tonumber(ARGV[b + 2]), next[i])
  end
  out[1] = 1
  out[2] = now
  out[3] = -1
  for i = 1, n do out[3 + i] = fmt(next[i]) end
  return out
end
out[1] = 1
out[2] = now
out[3] = -1
for i = 1, n do
  local b = 2 + (i - 1) * 5
  local kind, limit, period, d = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 4])
  local s = get(KEYS[i])
  local v = s
  if d ~= 0 then v = adj(kind, limit, period, d, s) end
  put(KEYS[i], kind, period, v)
  out[3 + i] = fmt(s)
  out[3 + n + i] = fmt(v)
end
return out
`;

type Scripted = { lmgateLimits(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown> };

/** The hash tag Redis Cluster slots a key by: the first {...} with something in it, else the key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** Item indexes grouped by hash tag, in first-seen order. */
function bySlot(items: readonly CounterItem[]): number[][] {
  const groups = new Map<string, number[]>();
  items.forEach((it, i) => {
    const tag = hashTag(it.key);
    const g = groups.get(tag);
    if (g) g.push(i);
    else groups.set(tag, [i]);
  });
  return [...groups.values()];
}

export class RedisLimitStore implements LimitStore {
  private readonly scripted: Scripted;
  /** A Cluster: one script call per hash slot. */
  private readonly split: boolean;

  constructor(conn: RedisKeyspace) {
    const client = conn.client;
    if (!('lmgateLimits' in client)) client.defineCommand('lmgateLimits', { lua: SCRIPT });
    this.scripted = client as unknown as Scripted;
    this.split = isCluster(client);
  }

  private call(mode: 'a' | 'j', items: readonly CounterItem[], values: readonly number[]): Promise<unknown> {
    const args: (string | number)[] = [];
    for (const it of items) args.push(it.key);
    args.push(mode);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      args.push(it.kind === 'rate' ? 'r' : 'b', it.limit, it.period, it.queue, values[i]!);
    }
    return this.scripted.lmgateLimits(items.length, ...args);
  }

  async acquire(items: readonly CounterItem[]): Promise<AcquireResult> {
    const groups = this.split ? bySlot(items) : [];
    if (groups.length <= 1) return this.acquireOne(items);
    const states: (number | undefined)[] = new Array(items.length);
    const taken: number[][] = [];
    let now = 0;
    for (const g of groups) {
      const r = await this.acquireOne(g.map((i) => items[i]!));
      now = r.now;
      g.forEach((i, j) => {
        states[i] = r.states[j];
      });
      if (r.admitted) {
        taken.push(g);
        continue;
      }
      for (const t of taken) {
        const undo = await this.adjust(
          t.map((i) => items[i]!),
          t.map((i) => -items[i]!.cost),
        );
        t.forEach((i, j) => {
          states[i] = undo.after[j];
        });
      }
      return { admitted: false, now: r.now, denied: g[r.denied]!, states };
    }
    return { admitted: true, now, denied: -1, states };
  }

  private async acquireOne(items: readonly CounterItem[]): Promise<AcquireResult> {
    const r = reply(
      await this.call(
        'a',
        items,
        items.map((i) => i.cost),
      ),
      items.length,
    );
    return { admitted: r[0] === '1', now: Number(r[1]), denied: Number(r[2]), states: r.slice(3).map(num) };
  }

  async adjust(items: readonly CounterItem[], deltas: readonly number[]): Promise<AdjustResult> {
    const groups = this.split ? bySlot(items) : [];
    if (groups.length <= 1) return this.adjustOne(items, deltas);
    const before: (number | undefined)[] = new Array(items.length);
    const after: (number | undefined)[] = new Array(items.length);
    let now = 0;
    for (const g of groups) {
      const r = await this.adjustOne(
        g.map((i) => items[i]!),
        g.map((i) => deltas[i]!),
      );
      now = r.now;
      g.forEach((i, j) => {
        before[i] = r.before[j];
        after[i] = r.after[j];
      });
    }
    return { now, before, after };
  }

  private async adjustOne(items: readonly CounterItem[], deltas: readonly number[]): Promise<AdjustResult> {
    const n = items.length;
    const r = reply(await this.call('j', items, deltas), 2 * n);
    return { now: Number(r[1]), before: r.slice(3, 3 + n).map(num), after: r.slice(3 + n).map(num) };
  }
}

function reply(v: unknown, states: number): string[] {
  if (!Array.isArray(v) || v.length !== 3 + states) throw new Error('unexpected reply from the limits script');
  return v.map(String);
}

const num = (s: string): number | undefined => (s === '' ? undefined : Number(s));
