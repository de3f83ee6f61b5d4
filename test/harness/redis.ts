// A real redis-server (Debian's package) on a free loopback port, for suites that share limits
// and budgets through Redis. No persistence: each test run starts empty.
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { freePort, waitFor } from './ports.ts';
import { Proc } from './processes.ts';

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

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(500);
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
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
