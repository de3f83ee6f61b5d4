// npm run quickstart: mock model server + LM Gate + real Envoy, a demo key, and a curl to try.
// Ctrl-C stops everything.
//
//   npm run quickstart                                   # with the mock model server
//   npm run quickstart -- --upstream http://127.0.0.1:11434   # in front of a real server (Ollama, vLLM, ...)
//   npm run quickstart -- --port 10001                   # another listener port
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { envoyVersion, renderEnvoyConfig, startEnvoy } from '../test/harness/envoy.ts';
import { makeKey, startGate } from '../test/harness/gate.ts';
import { freePort } from '../test/harness/ports.ts';
import { type MockModel, startMockModel } from '../test/mock/model-server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '10000' },
    upstream: { type: 'string' },
    model: { type: 'string' },
  },
});
const listener = Number(values.port);
const upstream = values.upstream ? new URL(values.upstream) : undefined;
if (upstream && !/^https?:$/.test(upstream.protocol)) {
  console.error('--upstream must be an http:// or https:// URL, for example http://127.0.0.1:11434');
  process.exit(2);
}
const model = values.model ?? (upstream ? 'llama3.2' : 'mock-small');

let mock: MockModel | undefined;
if (!upstream) mock = await startMockModel({ chunks: 8, chunkDelayMs: 60 });
const key = makeKey('demo', { tenant: 'demo' });
const gate = await startGate([key]);
const dir = await mkdtemp(join(tmpdir(), 'lm-gate-quickstart-'));
const ports = { listener, admin: await freePort(), gate: gate.grpcPort, model: mock?.port ?? 0 };
const envoyConfig = await renderEnvoyConfig(ports, join(dir, 'envoy.yaml'), (cfg) => {
  if (!upstream) return;
  // A real server by name: resolve it by DNS, and speak TLS for https.
  const cluster = cfg.static_resources.clusters.find((c: { name: string }) => c.name === 'model_server');
  const https = upstream.protocol === 'https:';
  cluster.type = 'LOGICAL_DNS';
  cluster.dns_lookup_family = 'V4_PREFERRED';
  cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = {
    address: upstream.hostname.replace(/^\[|\]$/g, ''),
    port_value: Number(upstream.port || (https ? 443 : 80)),
  };
  if (https) {
    cluster.transport_socket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: upstream.hostname,
      },
    };
  }
  // Envoy routes by Host; a real server expects its own name there.
  const route =
    cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
  route.route.host_rewrite_literal = upstream.host;
});
let envoy: Awaited<ReturnType<typeof startEnvoy>>;
try {
  envoy = await startEnvoy(envoyConfig, ports);
} catch (err) {
  console.error(`Envoy did not start (is port ${listener} free? try --port): ${(err as Error).message}`);
  await gate.stop('SIGKILL');
  await mock?.close();
  process.exit(1);
}

const base = `http://127.0.0.1:${listener}`;
console.log(`
LM Gate is running.
  Envoy        ${base}   (Envoy ${/\/(\d+\.\d+\.\d+)\//.exec(envoyVersion())?.[1] ?? 'unknown version'})
  LM Gate      gRPC 127.0.0.1:${gate.grpcPort}, metrics http://127.0.0.1:${gate.adminPort}/metrics
  Model        ${upstream ? upstream.origin : `mock model server ${mock!.url}`}
  Audit log    ${gate.auditPath}
  Demo API key ${key.key}

Try it:

  curl -s ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${key.key}" \\
    -H "Content-Type: application/json" \\
    -d '{"model":"${model}","messages":[{"role":"user","content":"Hello, gate"}]}'

Streamed (the gate meters it; the usage event is not added to your stream):

  curl -sN ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${key.key}" \\
    -H "Content-Type: application/json" \\
    -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"Hello, gate"}]}'

With the OpenAI SDK (Node):

  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${base}/v1', apiKey: '${key.key}' });
  const r = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: 'Hello, gate' }] });

Without the key you get a 401; the audit log gets one line per request.
Ctrl-C stops Envoy, the gate${mock ? ' and the mock' : ''}.
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping...');
  await envoy.stop();
  await gate.stop();
  await mock?.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
