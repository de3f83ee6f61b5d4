// A real redis-server (Debian's package) on a free loopback port, for suites that share limits
// and budgets through Redis. No persistence: each test run starts empty.
import { execFile, execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './ports.ts';
import { Proc } from './processes.ts';
import { tempDir } from './temp-dirs.ts';

export function findRedisServer(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('redis-server not found: install Debian package redis-server (scripts/dev.sh does when root)');
  }
}

export class Redis {
  proc: Proc;
  readonly port: number;
  constructor(proc: Proc, port: number) {
    this.proc = proc;
    this.port = port;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM');
  }
  /** Started again on the same port, empty (no persistence): what an outage, or a Redis
   * restarted without its data, looks like to the gate. */
  async restart(): Promise<void> {
    await this.stop();
    this.proc = await spawnRedis(this.port);
  }
}

function ping(port: number, command = 'PING', expect = '+PONG'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(500);
    s.once('connect', () => s.write(`${command}\r\n`));
    s.once('data', (d) => {
      resolve(d.toString().includes(expect));
      s.destroy();
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      resolve(false);
      s.destroy();
    });
  });
}

export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  return new Redis(await spawnRedis(port), port);
}

async function spawnRedis(port: number): Promise<Proc> {
  const proc = new Proc('redis', findRedisServer(), [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'yes',
  ]);
  await waitFor('redis ready', async () => {
    if (!proc.running) throw new Error(`redis-server exited\n${proc.describe()}`);
    return (await ping(port)) ? true : undefined;
  });
  return proc;
}

/** A master (a plain startRedis) and one sentinel watching it as `name`, quorum 1: what a
 * Sentinel deployment looks like to a client. */
export class RedisSentinel {
  readonly master: Redis;
  readonly sentinel: Proc;
  readonly port: number;
  readonly name: string;
  constructor(master: Redis, sentinel: Proc, port: number, name: string) {
    this.master = master;
    this.sentinel = sentinel;
    this.port = port;
    this.name = name;
  }
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
  async stop(): Promise<void> {
    await this.sentinel.stop('SIGTERM');
    await this.master.stop();
  }
}

export async function startRedisSentinel(name = 'lmgate'): Promise<RedisSentinel> {
  const master = await startRedis();
  const port = await freePort();
  const dir = await tempDir('lm-gate-sentinel-');
  // A sentinel rewrites its config file: it must be its own, writable.
  const conf = join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      '',
    ].join('\n'),
  );
  const sentinel = new Proc('redis-sentinel', findRedisServer(), [conf, '--sentinel']);
  await waitFor('sentinel ready', async () => {
    if (!sentinel.running) throw new Error(`redis sentinel exited\n${sentinel.describe()}`);
    return (await ping(port, `SENTINEL get-master-addr-by-name ${name}`, String(master.port))) ? true : undefined;
  });
  return new RedisSentinel(master, sentinel, port, name);
}

/** Three redis-server nodes in cluster mode, the 16384 slots split between them (no replicas). */
export class RedisCluster {
  readonly nodes: Proc[];
  readonly ports: number[];
  constructor(nodes: Proc[], ports: number[]) {
    this.nodes = nodes;
    this.ports = ports;
  }
  get addresses(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p}`);
  }
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop('SIGTERM')));
  }
}

export async function startRedisCluster(count = 3): Promise<RedisCluster> {
  const dir = await tempDir('lm-gate-cluster-');
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const nodes = ports.map(
    (port) =>
      new Proc(`redis-cluster-${port}`, findRedisServer(), [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
        '--save',
        '',
        '--appendonly',
        'no',
      ]),
  );
  const cluster = new RedisCluster(nodes, ports);
  try {
    for (const [i, port] of ports.entries())
      await waitFor('cluster node ready', async () => {
        if (!nodes[i]!.running) throw new Error(`redis cluster node exited\n${nodes[i]!.describe()}`);
        return (await ping(port)) ? true : undefined;
      });
    const cli = execFileSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' }).trim();
    await promisify(execFile)(cli, [
      '--cluster',
      'create',
      ...cluster.addresses,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const port of ports)
      await waitFor('cluster state ok', async () =>
        (await ping(port, 'CLUSTER INFO', 'cluster_state:ok')) ? true : undefined,
      );
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
