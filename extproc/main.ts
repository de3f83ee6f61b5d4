// lm-gate: the CLI.
//   lm-gate serve -c config.yaml        run the ext_proc server
//   lm-gate check-config config.yaml    validate a config file (exit 1 naming each bad field)
//   lm-gate keys create [--id ID] [--tenant T] [--models a,b] [--endpoints a,b]
//                                       print a new API key and the config entry to paste
import { parseArgs } from 'node:util';
import { FileAuditSink } from './audit/sink.ts';
import { ConfigError, loadConfigFile } from './config/load.ts';
import { restartRequired } from './config/restart.ts';
import { watchConfig } from './config/watch.ts';
import { generateApiKey, hashApiKey } from './identity/api-keys.ts';
import { GateServer } from './server/grpc-server.ts';
import { startAdminServer } from './telemetry/admin.ts';
import { createLogger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';

const USAGE = `usage:
  lm-gate serve -c FILE
  lm-gate check-config FILE
  lm-gate keys create [--id ID] [--tenant TENANT] [--models a,b] [--endpoints a,b]`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'keys':
      return keys(rest);
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      return 0;
    default:
      console.error(command ? `unknown command "${command}"\n${USAGE}` : USAGE);
      return 2;
  }
}

async function checkConfig(args: string[]): Promise<number> {
  const file = args[0];
  if (!file) {
    console.error('usage: lm-gate check-config FILE');
    return 2;
  }
  try {
    const cfg = await loadConfigFile(file);
    console.log(`${file}: ok (${cfg.identity.apiKeys.length} API keys)`);
    return 0;
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : String(err));
    return 1;
  }
}

function keys(args: string[]): number {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      id: { type: 'string' },
      tenant: { type: 'string', default: 'default' },
      models: { type: 'string', default: '*' },
      endpoints: { type: 'string', default: '*' },
    },
  });
  if (positionals[0] !== 'create') {
    console.error('usage: lm-gate keys create [--id ID] [--tenant TENANT] [--models a,b] [--endpoints a,b]');
    return 2;
  }
  const key = generateApiKey();
  const id = values.id ?? `key-${hashApiKey(key).slice(0, 8)}`;
  const list = (s: string) =>
    `[${s
      .split(',')
      .map((x) => JSON.stringify(x.trim()))
      .join(', ')}]`;
  // The key goes to stdout once; only its hash goes into the config.
  console.log(`API key (shown once, store it now): ${key}

Paste under identity.apiKeys in the config:
    - id: ${id}
      sha256: ${hashApiKey(key)}
      tenant: ${values.tenant}
      models: ${list(values.models)}
      endpoints: ${list(values.endpoints)}`);
  return 0;
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  const file = values.config;
  if (!file) {
    console.error('usage: lm-gate serve -c FILE');
    return 2;
  }
  let config: Awaited<ReturnType<typeof loadConfigFile>>;
  try {
    config = await loadConfigFile(file);
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : String(err));
    return 1;
  }
  const logger = createLogger(config.logging.level);
  const metrics = new Metrics();
  const audit = new FileAuditSink({
    path: config.audit.path,
    maxPendingBytes: config.audit.maxPendingBytes,
    logger,
    metrics,
  });
  const gate = new GateServer({ config, logger, metrics, audit });
  const { grpcPort } = await gate.start();
  const admin = await startAdminServer(config.server.adminAddress, metrics, {
    ready: () => {
      const warnings = gate.filterConfig.problems;
      if (gate.isDraining) return { ready: false, reason: 'draining', warnings };
      if (!audit.accepting) return { ready: false, reason: 'audit sink not accepting', warnings };
      return { ready: true, warnings };
    },
  });
  const stopWatching = watchConfig(file, {
    onValid: (next) => {
      const pending = restartRequired(gate.config, next);
      if (pending.length > 0)
        logger.warn({ file, fields: pending }, 'config reload: these changes take effect only after a restart');
      gate.reload(next);
      logger.level = next.logging.level;
      metrics.configReloads.labels('applied').inc();
      logger.info({ file, apiKeys: next.identity.apiKeys.length }, 'config reloaded');
    },
    onInvalid: (err) => {
      metrics.configReloads.labels('rejected').inc();
      logger.error({ file, problems: err.problems }, 'config reload rejected; the previous config keeps serving');
    },
  });
  logger.info(
    { grpcPort, unixSocket: config.server.unixSocket, adminPort: admin.port, audit: config.audit.path },
    'lm-gate serving',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, inFlight: gate.activeStreams }, 'draining');
    stopWatching();
    const { completed, cut } = await gate.drain(gate.config.server.drainTimeoutMs);
    await audit.close();
    admin.server.close();
    logger.info({ completed, cut }, 'stopped');
    logger.flush();
    // Exit on the next turn so the flushed log line leaves the process.
    setImmediate(() => process.exit(0));
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
