// A TCP proxy on a free loopback port that a test can cut and restore: a gate replica connected
// through it loses its connection (and its new attempts are refused) while the others keep theirs,
// which is how a network partition of one replica looks.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './ports.ts';

export class TcpProxy {
  readonly port: number;
  private readonly targetPort: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(port: number, targetPort: number) {
    this.port = port;
    this.targetPort = targetPort;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Drops every connection and refuses new ones until restore(). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  restore(): Promise<void> {
    return this.open();
  }

  close(): Promise<void> {
    return this.cut();
  }
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const proxy = new TcpProxy(await freePort(), targetPort);
  await proxy.open();
  return proxy;
}
