// lm-gate: the CLI.
//   lm-gate serve -c config.yaml        run the ext_proc server
//   lm-gate check-config config.yaml    validate a config file (exit 1 naming each bad field)
//   lm-gate keys create [--id ID] [--tenant T] [--models a,b] [--endpoints a,b]
//                                       print a new API key and the config entry to paste
//   lm-gate policy explain|test ...     judge a request, or a table of them, as the gate would
import { FileAuditSink } from './audit/sink.ts';
import { POLICY_EXPLAIN, POLICY_TEST, policyCommand } from './cli/policy.ts';
import { parseCommandArgs, UsageError } from './cli/usage.ts';
import { ConfigError, loadConfigFile } from './config/load.ts';
import { restartRequired } from './config/restart.ts';
import { watchConfig } from './config/watch.ts';
import { generateApiKey, hashApiKey } from './identity/api-keys.ts';
import { GateServer } from './server/grpc-server.ts';
import { type GateHost, SingleGate } from './server/host.ts';
import { ListenError } from './server/listen-error.ts';
import { WorkerPool, workerCount } from './server/workers.ts';
import { startAdminServer } from './telemetry/admin.ts';
import { routeGrpcLogs } from './telemetry/grpc-log.ts';
import { createLogger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';

const SERVE = 'lm-gate serve -c FILE';
const CHECK = 'lm-gate check-config FILE';
const KEYS = 'lm-gate keys create [--id ID] [--tenant TENANT] [--models a,b] [--endpoints a,b]';
const USAGE = `usage:\n  ${SERVE}\n  ${CHECK}\n  ${KEYS}\n  ${POLICY_EXPLAIN}\n  ${POLICY_TEST}`;
const help = { type: 'boolean', short: 'h' } as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'keys':
      return keys(rest);
    case 'policy':
      return policyCommand(rest);
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      return 0;
    case undefined:
      console.error(USAGE);
      return 2;
    default:
      throw new UsageError(
        'lm-gate',
        `unknown command "${command}"; commands: serve, check-config, keys create, policy explain, policy test (lm-gate --help shows their options)`,
      );
  }
}

async function checkConfig(args: string[]): Promise<number> {
  const cmd = 'lm-gate check-config';
  const { positionals, values } = parseCommandArgs(cmd, CHECK, { args, allowPositionals: true, options: { help } });
  if (values.help) return printUsage(CHECK);
  if (positionals.length === 0) throw new UsageError(cmd, 'FILE is required', CHECK);
  if (positionals.length > 1) throw new UsageError(cmd, 'one FILE only', CHECK);
  const file = positionals[0]!;
  const cfg = await loadConfigFile(file);
  console.log(`${file}: ok (${cfg.identity.apiKeys.length} API keys)`);
  return 0;
}

function keys(args: string[]): number {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') return printUsage(KEYS);
  if (sub !== 'create') throw new UsageError('lm-gate keys', 'expected "keys create"', KEYS);
  const { values } = parseCommandArgs('lm-gate keys create', KEYS, {
    args: rest,
    options: {
      help,
      id: { type: 'string' },
      tenant: { type: 'string', default: 'default' },
      models: { type: 'string', default: '*' },
      endpoints: { type: 'string', default: '*' },
    },
  });
  if (values.help) return printUsage(KEYS);
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

function printUsage(usage: string): number {
  console.log(`usage: ${usage}`);
  return 0;
}

async function serve(args: string[]): Promise<number> {
  const cmd = 'lm-gate serve';
  const { values } = parseCommandArgs(cmd, SERVE, { args, options: { help, config: { type: 'string', short: 'c' } } });
  if (values.help) return printUsage(SERVE);
  const file = values.config;
  if (!file) throw new UsageError(cmd, '-c FILE is required', SERVE);
  const config = await loadConfigFile(file);
  const logger = createLogger(config.logging.level);
  routeGrpcLogs(logger);
  const metrics = new Metrics();
  const audit = new FileAuditSink({
    path: config.audit.path,
    maxPendingBytes: config.audit.maxPendingBytes,
    logger,
    metrics,
  });
  const count = workerCount(config);
  const host: GateHost =
    count > 1
      ? new WorkerPool({ config, count, logger, metrics, audit })
      : new SingleGate(new GateServer({ config, logger, metrics, audit }), metrics);
  let grpcPorts: number[];
  let admin: Awaited<ReturnType<typeof startAdminServer>>;
  try {
    ({ grpcPorts } = await host.start());
    const { adminAddress } = config.server;
    admin = await startAdminServer(adminAddress, host, {
      ready: async () => {
        const { listening, problems: warnings } = await host.readiness();
        if (host.isDraining) return { ready: false, reason: 'draining', warnings };
        if (!audit.accepting) return { ready: false, reason: 'audit sink not accepting', warnings };
        if (listening < count)
          return { ready: false, reason: `${listening} of ${count} gate workers listening`, warnings };
        return { ready: true, warnings };
      },
    }).catch((err: unknown) => {
      throw new ListenError('server.adminAddress', adminAddress, err);
    });
  } catch (err) {
    // Release whatever did start, so the process ends now with the one line below.
    host.forceShutdown();
    await audit.close();
    if (!(err instanceof ListenError)) throw err;
    console.error(`${file}: ${err.message}`);
    return 1;
  }
  let current = config;
  const stopWatching = watchConfig(file, {
    onValid: (next) => {
      const pending = restartRequired(current, next);
      if (pending.length > 0)
        logger.warn({ file, fields: pending }, 'config reload: these changes take effect only after a restart');
      current = next;
      host.reload(next);
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
    {
      grpcPort: grpcPorts[0],
      ...(count > 1 ? { workers: count, grpcPorts } : {}),
      unixSocket: config.server.unixSocket,
      adminPort: admin.port,
      audit: config.audit.path,
    },
    'lm-gate serving',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, inFlight: await host.activeStreams() }, 'draining');
    stopWatching();
    const { completed, cut } = await host.drain(current.server.drainTimeoutMs);
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

/** A user's mistake is one line (a config file: one per problem) and an exit code; anything
 * else is a bug, whose report needs the stack. */
function report(err: unknown): number {
  if (err instanceof UsageError) {
    console.error(err.message);
    return 2;
  }
  if (err instanceof ConfigError) {
    console.error(err.message);
    return 1;
  }
  console.error(err);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
