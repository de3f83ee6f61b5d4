// `npm run quickstart` stopped the way people and tools stop it: a signal to the npm process
// alone, not to its process group (a supervisor, `kill PID`, a closed terminal's SIGHUP, npm
// itself killed). Every process under it must end, Envoy (which holds the port) included, and
// the quickstart's folder must be removed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { ROOT } from '../harness/envoy.ts';
import { freePort, GiveUp, waitFor } from '../harness/ports.ts';
import { Proc } from '../harness/processes.ts';

/** Every process below `root`, from /proc (Linux, as the Envoy the suites run). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // ended while we looked
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      visit(c);
    }
  };
  visit(root);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0) until its parent reaps it; it holds no port and runs nothing.
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const commandOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '(gone)';
  }
};

// SIGINT and SIGTERM npm forwards to its child; SIGHUP it does not, and SIGKILL ends npm with
// no word to anyone: the quickstart sees its parent change and stops.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL'] as const) {
  it(`${signal} to the npm process alone stops Envoy, the gate and the mock, and removes the folder`, async () => {
    const port = await freePort();
    const npm = new Proc('npm run quickstart', 'npm', ['run', '--silent', 'quickstart', '--', '--port', String(port)]);
    try {
      await waitFor(
        'quickstart banner',
        async () => {
          if (!npm.running) throw new GiveUp(`npm exited\n${npm.describe()}`);
          return npm.stdout.includes('Ctrl-C stops') ? true : undefined;
        },
        60_000,
      );
      const folder = /^ {2}Config +(\S+)\/lm-gate\.yaml/m.exec(npm.stdout)![1]!;
      expect(existsSync(folder)).toBe(true);
      const pids = descendants(npm.pid!);
      const commands = pids.map(commandOf).join('\n');
      // What there is to stop: the quickstart (with the mock in it), the gate and Envoy.
      expect(commands).toContain(`${ROOT}/scripts/quickstart.ts`.replace(`${ROOT}/`, ''));
      expect(commands).toMatch(/extproc\/main\.ts serve/);
      expect(commands).toMatch(/envoy -c/);

      process.kill(npm.pid!, signal);
      await waitFor(
        'every process under npm to end',
        async () => (pids.every((pid) => !alive(pid)) ? true : undefined),
        10_000,
      ).catch(() => {
        throw new Error(`still running:\n${pids.filter(alive).map(commandOf).join('\n')}`);
      });
      await expect(fetch(`http://127.0.0.1:${port}/v1/models`)).rejects.toThrow();
      expect(existsSync(folder)).toBe(false);
    } finally {
      await npm.stop('SIGKILL');
    }
  });
}
