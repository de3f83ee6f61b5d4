// The admin HTTP port: /metrics (Prometheus), /healthz (the process answers), /readyz (it can
// take traffic: listening, not draining, audit sink accepting). Bind it to loopback or a
// cluster-internal address; it exposes no request content.
import type { Server } from 'node:http';

// Not `import { createServer } from 'node:http'`: an ES import of a builtin evaluates every export
// for its namespace, and node:http's include undici's WebSocket classes, so the import alone loads
// Node's whole fetch implementation: ~2.3 MiB of heap, and the idle governed gate's RSS went
// 115.5 -> 112.9 MiB without it (npm run bench:rss). getBuiltinModule hands over the CommonJS
// exports and touches none of them.
const { createServer } = process.getBuiltinModule('node:http');

export interface Readiness {
  /** warnings: problems that do not stop the gate from taking traffic but stop it from doing
   * its job for some requests (an Envoy filter setting it cannot work with). */
  ready(): Promise<ReadyState> | ReadyState;
}
export type ReadyState = { ready: boolean; reason?: string; warnings?: readonly string[] };

/** The Prometheus text of the process: one registry, or gate workers' summed. */
export interface MetricsSource {
  metricsText(): Promise<string>;
  readonly contentType: string;
}

export function startAdminServer(
  address: string,
  metrics: MetricsSource,
  readiness: Readiness,
): Promise<{ server: Server; port: number }> {
  const server = createServer(async (req, res) => {
    const url = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/metrics') {
      const body = await metrics.metricsText();
      res.writeHead(200, { 'content-type': metrics.contentType }).end(body);
    } else if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const r = await readiness.ready();
      let text = r.ready ? 'ready\n' : `not ready: ${r.reason}\n`;
      for (const w of r.warnings ?? []) text += `warning: ${w}\n`;
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(text);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}
