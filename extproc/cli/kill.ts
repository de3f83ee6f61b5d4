// lm-gate kill: the kill switch from a shell, through the Redis every replica follows.
//
//   lm-gate kill KIND ID [--reason TEXT] [--ttl DURATION] -c FILE   every replica refuses it
//   lm-gate kill --lift KIND ID -c FILE                              and admits it again
//   lm-gate kill --list -c FILE                                      what is killed, and why
//
// KIND is key (an API key's id), user, team, tenant or model. FILE is a replica's config: the
// command reads its redis section (and, for --list, its own killSwitch lists) and nothing else.
// One attempt to connect, bounded by redis.connectTimeoutMs; a failure is one line and exit 1.
import { hostname, userInfo } from 'node:os';
import { loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { configKillSet } from '../killswitch/config-kills.ts';
import { isKillKind, KILL_KINDS, type KillEntry, type KillKind } from '../killswitch/kill-set.ts';
import { RedisKillStore } from '../killswitch/redis-store.ts';
import { createRedisClient, redisTarget } from '../redis/connection.ts';
import { parseDuration, rfc3339At } from './durations.ts';
import { CommandError, parseCommandArgs, UsageError } from './usage.ts';

export const KILL_USAGE = [
  'lm-gate kill key|user|team|tenant|model ID [--reason TEXT] [--ttl DURATION] -c FILE',
  'lm-gate kill --lift key|user|team|tenant|model ID -c FILE',
  'lm-gate kill --list -c FILE',
].join('\n  ');
/** One line, for the usage errors (which are one line). */
const SYNOPSIS = 'lm-gate kill [--lift] KIND ID [--reason TEXT] [--ttl DURATION] -c FILE | --list -c FILE';

const CMD = 'lm-gate kill';
export interface KillCommand {
  action: 'kill' | 'lift' | 'list';
  kind?: KillKind;
  id?: string;
  reason?: string;
  ttlMs?: number;
  config: string;
}

/** The command line as a KillCommand; UsageError (exit 2) for anything else. */
export function parseKillArgs(args: string[]): KillCommand | 'help' {
  const { values, positionals } = parseCommandArgs(CMD, SYNOPSIS, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      reason: { type: 'string' },
      ttl: { type: 'string' },
      lift: { type: 'boolean' },
      list: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const usage = (problem: string) => new UsageError(CMD, problem, SYNOPSIS);
  if (!values.config) throw usage('-c FILE is required');
  if (values.lift && values.list) throw usage('--lift and --list do not go together');
  if (values.list) {
    if (positionals.length > 0 || values.reason !== undefined || values.ttl !== undefined)
      throw usage('--list takes no KIND, ID, --reason or --ttl');
    return { action: 'list', config: values.config };
  }
  if (positionals.length !== 2) throw usage('expected KIND and ID');
  const [kind, id] = positionals as [string, string];
  if (!isKillKind(kind)) throw usage(`unknown KIND "${kind}"; one of ${KILL_KINDS.join(', ')}`);
  // Control characters would garble --list and the logs; 256 bounds what a replica holds per id.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  if (id.length === 0 || id.length > 256 || /[\u0000-\u001f\u007f]/.test(id))
    throw usage('ID must be 1-256 characters, none of them control characters');
  if (values.lift) {
    if (values.reason !== undefined || values.ttl !== undefined) throw usage('--lift takes no --reason or --ttl');
    return { action: 'lift', kind, id, config: values.config };
  }
  const cmd: KillCommand = { action: 'kill', kind, id, config: values.config };
  if (values.reason !== undefined) {
    if (values.reason.length > 200) throw usage('--reason is at most 200 characters');
    cmd.reason = values.reason;
  }
  if (values.ttl !== undefined) {
    const ms = parseDuration(values.ttl);
    if (ms === undefined) throw usage(`--ttl "${values.ttl}": expected a number and a unit (90s, 15m, 2h, 7d, 2w)`);
    cmd.ttlMs = ms;
  }
  return cmd;
}

export async function killCommand(args: string[]): Promise<number> {
  const cmd = parseKillArgs(args);
  if (cmd === 'help') {
    console.log(`usage:\n  ${KILL_USAGE}`);
    return 0;
  }
  const config = await loadConfigFile(cmd.config);
  const redis = config.redis;
  if (redis === undefined)
    throw new CommandError(
      `${cmd.config}: no redis section, and the kill switch is shared only through Redis; without it, list the id under killSwitch in each replica's config`,
    );
  const target = redisTarget(redis);
  // One attempt: a command that retries forever would hang a script.
  const client = createRedisClient(redis, 'cli', { retryStrategy: () => null, lazyConnect: true });
  // The 'error' event says why (ECONNREFUSED, WRONGPASS); the rejected connect() only that the
  // connection closed.
  let why: string | undefined;
  client.on('error', (err: Error) => {
    why ??= err.message;
  });
  try {
    await client.connect().catch((err: unknown) => {
      throw new CommandError(`${CMD}: cannot reach Redis at ${target}: ${why ?? (err as Error).message}`);
    });
    const store = new RedisKillStore({ client, key: (name) => redis.keyPrefix + name });
    const where = `Redis ${target} (key prefix "${redis.keyPrefix}")`;
    const failed = (err: unknown) => {
      if (err instanceof CommandError) throw err;
      throw new CommandError(`${CMD}: Redis at ${target}: ${(err as Error).message}`);
    };
    switch (cmd.action) {
      case 'list':
        return await list(store, config, cmd.config, where).catch(failed);
      case 'kill':
        return await kill(store, config, cmd, where).catch(failed);
      case 'lift':
        return await lift(store, config, cmd, where).catch(failed);
    }
  } finally {
    client.disconnect();
  }
}

function stageFor(kind: KillKind): string {
  return kind === 'model' ? 'killswitch.model' : 'killswitch.principal';
}

async function kill(store: RedisKillStore, config: Config, cmd: KillCommand, where: string): Promise<number> {
  const kind = cmd.kind!;
  const id = cmd.id!;
  const now = Date.now();
  const entry: KillEntry = {
    at: now,
    source: 'cli',
    ...(cmd.reason !== undefined ? { reason: cmd.reason } : {}),
    ...(cmd.ttlMs !== undefined ? { expiresAt: now + cmd.ttlMs } : {}),
    by: `${userInfo().username}@${hostname()}`,
  };
  await store.kill(kind, id, entry);
  const until = entry.expiresAt === undefined ? 'until lifted' : `until ${new Date(entry.expiresAt).toISOString()}`;
  console.log(`killed ${kind} ${id} ${until}, on every replica that shares ${where}`);
  if (!config.pipeline.stages.includes(stageFor(kind)))
    console.error(
      `warning: ${cmd.config}'s pipeline.stages leaves out ${stageFor(kind)}: replicas running it do not enforce this`,
    );
  return 0;
}

async function lift(store: RedisKillStore, config: Config, cmd: KillCommand, where: string): Promise<number> {
  const kind = cmd.kind!;
  const id = cmd.id!;
  const lifted = (await store.lift(kind, id)) > 0;
  const inFile = configKillSet(config).get(kind, id) !== undefined;
  if (!lifted) {
    const why = inFile
      ? `; ${cmd.config} kills it itself (killSwitch, or a disabled key): edit the config to lift that`
      : '';
    throw new CommandError(`${CMD}: no kill of ${kind} ${id} in ${where}${why}`);
  }
  console.log(`lifted ${kind} ${id} on every replica that shares ${where}`);
  if (inFile)
    console.error(`note: ${cmd.config} still kills ${kind} ${id} itself; replicas running it keep refusing it`);
  return 0;
}

async function list(store: RedisKillStore, config: Config, file: string, where: string): Promise<number> {
  const snapshot = await store.snapshot(config.killSwitch.maxEntries);
  const now = Date.now();
  const rows: string[][] = [['KIND', 'ID', 'SOURCE', 'SINCE', 'UNTIL', 'BY', 'REASON']];
  const sorted = [...snapshot.entries].sort(
    (a, b) => KILL_KINDS.indexOf(a[0]) - KILL_KINDS.indexOf(b[0]) || a[1].localeCompare(b[1]),
  );
  for (const [kind, id, e] of sorted) {
    const until = e.expiresAt === undefined ? '-' : e.expiresAt <= now ? 'expired' : rfc3339At(e.expiresAt);
    rows.push([kind, id, `redis:${e.source}`, e.at > 0 ? rfc3339At(e.at) : '-', until, e.by ?? '-', e.reason ?? '']);
  }
  for (const [kind, id] of configKillSet(config).entries()) rows.push([kind, id, 'file', '-', '-', '-', file]);
  if (rows.length === 1) {
    console.log(`nothing killed (${where}, and ${file})`);
    return 0;
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
  return 0;
}
