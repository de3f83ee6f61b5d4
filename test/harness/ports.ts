import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Thrown by a waitFor probe when waiting longer cannot help (the process being waited for has
 * exited): waitFor rethrows it at once instead of retrying until its timeout. */
export class GiveUp extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GiveUp';
  }
}

/** The low end of the kernel's ephemeral port range: outgoing connections take their local
 * port from [low, high], and so does listen(0). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

// Ports are handed out below the ephemeral range: a port the OS picked for listen(0) and we
// then released can be taken by any outgoing connection before the server we start binds it
// (CI lost a run to Envoy's "Address already in use"). Below the range only another listener can
// take it, and each vitest worker (VITEST_POOL_ID) draws from its own slice, so two test files
// running at once never pick the same port.
// From 11000: the quickstart listens on 10000 by default (10001 is its suggested alternative).
const FIRST = 11_000;
const SLICES = 16;
const LOW = ephemeralLow();
const SLICE = Math.floor((LOW - FIRST) / SLICES);
const slice = (Number(process.env.VITEST_POOL_ID ?? 0) || 0) % SLICES;
// A random start: the files a worker runs one after another each load this module afresh.
let next = Math.floor(Math.random() * Math.max(SLICE, 1));

/** Ports this process will bind later itself, never handed out here (see reservePort). */
const reserved = new Set<number>();

/** A port this process will bind later (a listener named on its command line): freePort never
 * hands it out. A child process a test starts inherits the test's VITEST_POOL_ID and so draws
 * from the same slice; without this it could pick the port the test chose for it and hand it to
 * another server first (CI lost a quickstart run to the gate's gRPC server on the listener
 * port). */
export function reservePort(port: number): void {
  reserved.add(port);
}

function canListen(port: number): Promise<boolean> {
  if (reserved.has(port)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free TCP port on loopback, outside the ephemeral range when the range leaves room. */
export function freePort(): Promise<number> {
  return freeConsecutivePorts(1);
}

/** A port the OS picks (listen(0)); it may be taken again before the caller binds it. */
function osPickedPort(): Promise<number> {
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
 * grpcAddress's port plus their index). Each is checked by binding it; the slice's counter moves
 * past all of them, so the next call cannot hand one out again. */
export async function freeConsecutivePorts(n: number): Promise<number> {
  if (SLICE >= 256 && n < SLICE / 4) {
    for (let tries = 0; tries < SLICE; tries++) {
      let offset = next % SLICE;
      if (offset + n > SLICE) offset = 0;
      next = offset + n;
      const first = FIRST + slice * SLICE + offset;
      let all = true;
      for (let i = 0; i < n && all; i++) all = await canListen(first + i);
      if (all) return first;
    }
    throw new Error(`no ${n} consecutive free ports in ${FIRST + slice * SLICE}..${FIRST + (slice + 1) * SLICE - 1}`);
  }
  // The ephemeral range leaves no room below it: ports the OS picks, the first n in a row.
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await osPickedPort();
    if (first + n - 1 > 65535 || reserved.has(first)) continue;
    let all = true;
    for (let i = 1; i < n && all; i++) all = await canListen(first + i);
    if (all) return first;
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
