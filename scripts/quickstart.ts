// npm run quickstart: mock model server + LM Gate + real Envoy, two demo keys (one allowed
// everything, one restricted to a model so the 403 can be seen), and curls to try. Ctrl-C, a
// SIGTERM or SIGHUP to npm, or npm itself going away stops everything and removes the folder
// holding the config, audit log and logs.
//
//   npm run quickstart                                   # with the mock model server
//   npm run quickstart -- --upstream http://127.0.0.1:11434   # in front of a real server (Ollama, vLLM, ...)
//   npm run quickstart -- --port 10001                   # another listener port
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandArgs, UsageError } from '../extproc/cli/usage.ts';
import { envoyVersion, renderEnvoyConfig, startEnvoy } from '../test/harness/envoy.ts';
import { makeKey, startGate } from '../test/harness/gate.ts';
import { freePort, listenProblem, reservePort } from '../test/harness/ports.ts';
import { ProcExited } from '../test/harness/processes.ts';
import { startMockModel } from '../test/mock/model-server.ts';
import { onStopRequest } from './lifetime.ts';

const USAGE = 'npm run quickstart -- [--port PORT] [--upstream URL] [--model NAME]';

/** Steps that undo what has started, run last-first. */
const teardown: (() => Promise<unknown>)[] = [];
let dir: string | undefined;
let stopping = false;
// However the process ends (a stop, a failed start, a second Ctrl-C), the folder goes with it.
process.once('exit', () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function stop(code: number): Promise<never> {
  stopping = true;
  for (const step of [...teardown].reverse()) await step().catch(() => {});
  process.exit(code);
}

onStopRequest((reason) => {
  // Asked twice: do not wait for the drain. The children end with us (see Proc).
  if (stopping) process.exit(1);
  if (reason !== 'parent exited') console.log('\nstopping...');
  void stop(0);
});

/** A command-line mistake, found before anything started: one line, exit 2. */
function usageError(message: string): never {
  console.error(message);
  process.exit(2);
}

/** A problem found once parts are running: one line, then everything stops (exit 1). */
function fail(message: string): Promise<never> {
  console.error(message);
  return stop(1);
}

let values: { port: string; upstream?: string | undefined; model?: string | undefined };
try {
  ({ values } = parseCommandArgs('quickstart', USAGE, {
    options: { port: { type: 'string', default: '10000' }, upstream: { type: 'string' }, model: { type: 'string' } },
  }));
} catch (err) {
  if (err instanceof UsageError) usageError(err.message);
  throw err;
}

const listener = Number(values.port);
if (!/^\d+$/.test(values.port) || listener < 1 || listener > 65535)
  usageError(`quickstart: --port must be a port number from 1 to 65535, not "${values.port}"`);
const upstream = values.upstream === undefined ? undefined : URL.parse(values.upstream);
if (upstream === null || (upstream && !/^https?:$/.test(upstream.protocol)))
  usageError('quickstart: --upstream must be an http:// or https:// URL, for example http://127.0.0.1:11434');
const model = values.model ?? (upstream ? 'llama3.2' : 'mock-small');
// The model the restricted key asks for to get its 403; the mock serves it, so the refusal is
// visibly the gate's policy and not an unknown model.
const otherModel = upstream ? `not-${model}` : 'mock-large';

// Before anything starts: Envoy would find a busy port only after the gate and the mock were
// up, and report it among its own start-up lines.
const busy = await listenProblem(listener, '127.0.0.1');
if (busy) {
  console.error(
    `quickstart: port ${listener} (--port) ${busy.code === 'EADDRINUSE' ? 'is already in use' : `cannot be listened on (${busy.code})`}; ` +
      `stop what is using it or choose another: npm run quickstart -- --port ${listener === 65535 ? 10001 : listener + 1}`,
  );
  process.exit(1);
}

// Envoy binds it last: the gate's and Envoy's admin ports, chosen meanwhile, must not be it.
reservePort(listener);

const folder = await mkdtemp(join(tmpdir(), 'lm-gate-quickstart-'));
dir = folder;
const files = {
  config: join(folder, 'lm-gate.yaml'),
  audit: join(folder, 'audit.log'),
  gateLog: join(folder, 'gate.log'),
  envoyLog: join(folder, 'envoy.log'),
};

const mock = upstream ? undefined : await startMockModel({ chunks: 8, chunkDelayMs: 60 });
if (mock) teardown.push(() => mock.close());
const key = makeKey('demo', { tenant: 'demo' });
const restricted = makeKey('demo-restricted', { tenant: 'demo', models: [model] });

/** Start one part; if it exits during start-up, its last stderr line says why. */
async function part<T>(name: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof ProcExited) return fail(`quickstart: ${name} did not start: ${err.proc.lastErrorLine()}`);
    throw err;
  }
}

const gate = await part('LM Gate', () => startGate([key, restricted], { dir: folder, log: files.gateLog }));
teardown.push(() => gate.stop());
const ports = { listener, admin: await freePort(), gate: gate.grpcPort, model: mock?.port ?? 0 };
const envoyConfig = await renderEnvoyConfig(ports, join(folder, 'envoy.yaml'), (cfg) => {
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
  const routes: { route: { cluster: string; host_rewrite_literal?: string } }[] =
    cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
  for (const r of routes) if (r.route.cluster === 'model_server') r.route.host_rewrite_literal = upstream.host;
});
const envoy = await part('Envoy', () => startEnvoy(envoyConfig, ports, { log: files.envoyLog }));
teardown.push(() => envoy.stop());

const base = `http://127.0.0.1:${listener}`;
const curl = (apiKey: string, body: string, flags = '-s') => `  curl ${flags} ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${apiKey}" \\
    -H "Content-Type: application/json" \\
    -d '${body}'`;
const chat = (m: string, extra = '') => `{"model":"${m}",${extra}"messages":[{"role":"user","content":"Hello, gate"}]}`;
const withStatus = `-s -w '\\nHTTP %{http_code}\\n'`;

console.log(`
LM Gate is running.
  Envoy        ${base}   (Envoy ${/\/(\d+\.\d+\.\d+)\//.exec(envoyVersion())?.[1] ?? 'unknown version'})
  LM Gate      gRPC 127.0.0.1:${gate.grpcPort}, metrics http://127.0.0.1:${gate.adminPort}/metrics
  Model        ${upstream ? upstream.origin : `mock model server ${mock!.url}`}
  Demo API key ${key.key}   (every model)
  Restricted   ${restricted.key}   (${model} only)

Files, removed when the quickstart stops:
  Config       ${files.config}   (edit it: the gate reloads it on save)
  Audit log    ${files.audit}   (one JSON line per request)
  Gate log     ${files.gateLog}
  Envoy log    ${files.envoyLog}   (its access log: one JSON line per request)

Try it:

${curl(key.key, chat(model))}

Streamed (the gate meters it; the usage event is not added to your stream):

${curl(key.key, chat(model, '"stream":true,'), '-sN')}

The restricted key may ask for ${model}:

${curl(restricted.key, chat(model), withStatus)}

and is refused with 403 for any other model (the x-lmgate-rule header names the rule):

${curl(restricted.key, chat(otherModel), withStatus)}

With the OpenAI SDK (Node):

  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${base}/v1', apiKey: '${key.key}' });
  const r = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: 'Hello, gate' }] });

Without a key you get a 401; the audit log gets one line per request.
Ctrl-C stops Envoy, the gate${mock ? ' and the mock' : ''}.
`);
