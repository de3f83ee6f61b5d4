import { createServer } from 'node:net';

/** Thrown by a waitFor probe when waiting longer cannot help (the process being waited for has
 * exited): waitFor rethrows it at once instead of retrying until its timeout. */
export class GiveUp extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GiveUp';
  }
}

/** A free TCP port on loopback (the OS picks it; tiny race window acceptable in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** `n` consecutive free TCP ports on loopback, the first returned (gate workers listen on
 * grpcAddress's port plus their index). Each is bound at once, then all are released. */
export async function freeConsecutivePorts(n: number): Promise<number> {
  const bind = (port: number) =>
    new Promise<(() => Promise<void>) | undefined>((resolve) => {
      const s = createServer();
      s.unref();
      s.once('error', () => resolve(undefined));
      s.listen(port, '127.0.0.1', () => resolve(() => new Promise<void>((r) => s.close(() => r()))));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await freePort();
    if (first + n - 1 > 65535) continue;
    const held = [];
    for (let i = 0; i < n; i++) {
      const close = await bind(first + i);
      if (!close) break;
      held.push(close);
    }
    await Promise.all(held.map((close) => close()));
    if (held.length === n) return first;
  }
  throw new Error(`no ${n} consecutive free ports on loopback`);
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

/** Why `host:port` cannot be listened on right now (EADDRINUSE, EACCES, ...), or undefined if
 * it can. A check before starting a stack, so a busy port is reported before anything starts. */
export function listenProblem(port: number, host: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    s.listen(port, host, () => s.close(() => resolve(undefined)));
  });
}
