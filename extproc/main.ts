// lm-gate: the CLI.
//   lm-gate serve -c config.yaml        run the ext_proc server
//   lm-gate check-config config.yaml    validate a config file (exit 1 naming each bad field)
//   lm-gate keys create|list|revoke|rotate ...
//                                       API keys in a keys file, or a config entry to paste
//   lm-gate policy explain|test ...     judge a request, or a table of them, as the gate would
//   lm-gate kill KIND ID | --lift KIND ID | --list  -c config.yaml
//                                       the kill switch, on every replica through Redis
//   lm-gate report --from T --to T --by tenant,model FILE...
//                                       showback: tokens and cost per group from the audit log
//   lm-gate audit verify|query|keygen ...
//                                       prove the audit files, select records, make a key
//   lm-gate dlp scan [--format jsonl|table] [--policy NAME] [-c config.yaml] [FILE]
//                                       the DLP engine over JSON lines of text
import { FileAuditSink } from './audit/sink.ts';
import { CommandError, parseCommandArgs, UsageError } from './cli/usage.ts';
import { ConfigError } from './config/config-error.ts';
import { loadConfigInChild } from './config/load-in-child.ts';
import { restartRequired } from './config/restart.ts';
import { watchConfig } from './config/watch.ts';
import { configKillSet } from './killswitch/config-kills.ts';
import { KillSwitchMetrics } from './killswitch/metrics.ts';
import { SharedKillSwitch } from './killswitch/shared.ts';
import { systemClock } from './pipeline/stage.ts';
import { RedisMetrics } from './redis/metrics.ts';
import { GateServer } from './server/grpc-server.ts';
import { boundHeapGrowth } from './server/heap-growth.ts';
import { type GateHost, gateReadiness, SingleGate } from './server/host.ts';
import { keepCodeThroughIdle } from './server/idle-code.ts';
import { ListenError } from './server/listen-error.ts';
import { speedUpTierUp } from './server/tier-up.ts';
import { WorkerPool, workerCount } from './server/workers.ts';
import { startAdminServer } from './telemetry/admin.ts';
import { createLogger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';

const SERVE = 'lm-gate serve -c FILE';
const CHECK = 'lm-gate check-config FILE';

/** Every command's synopsis. The other commands' modules are loaded only when one of them runs
 * (or for this text): `serve` never holds their code, ~2 MiB of heap in every gate. */
async function usage(): Promise<string> {
  const [audit, dlp, keys, kill, policy, report] = await Promise.all([
    import('./cli/audit.ts'),
    import('./cli/dlp.ts'),
    import('./cli/keys.ts'),
    import('./cli/kill.ts'),
    import('./cli/policy.ts'),
    import('./cli/report.ts'),
  ]);
  const lines = [
    SERVE,
    CHECK,
    ...keys.KEYS_USAGE,
    policy.POLICY_EXPLAIN,
    policy.POLICY_TEST,
    report.REPORT_USAGE,
    ...audit.AUDIT_USAGE,
  ];
  return `usage:\n${lines.map((u) => `  ${u}`).join('\n')}\n  ${kill.KILL_USAGE}\n  ${dlp.DLP_SCAN}`;
}
const help = { type: 'boolean', short: 'h' } as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'keys':
      return (await import('./cli/keys.ts')).keysCommand(rest);
    case 'policy':
      return (await import('./cli/policy.ts')).policyCommand(rest);
    case 'kill':
      return (await import('./cli/kill.ts')).killCommand(rest);
    case 'report':
      return (await import('./cli/report.ts')).reportCommand(rest);
    case 'audit':
      return (await import('./cli/audit.ts')).auditCommand(rest);
    case 'dlp':
      return (await import('./cli/dlp.ts')).dlpCommand(rest);
    case '--help':
    case '-h':
    case 'help':
      console.log(await usage());
      return 0;
    case undefined:
      console.error(await usage());
      return 2;
    default:
      throw new UsageError(
        'lm-gate',
        `unknown command "${command}"; commands: serve, check-config, keys, policy, kill, report, audit, dlp (lm-gate --help shows their options)`,
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
  const { loadConfigSources } = await import('./config/load.ts');
  const { config, keysFile, keysFromFile } = await loadConfigSources(file);
  const all = config.identity.apiKeys.length;
  console.log(`${file}: ok (${all} API keys${keysFile ? `, ${keysFromFile} of them from ${keysFile}` : ''})`);
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
  // Before the config is read: everything the gate allocates from here on lives under it.
  boundHeapGrowth();
  speedUpTierUp();
  keepCodeThroughIdle();
  // In a short-lived child process: zod and the config schemas never load in this one.
  const loaded = await loadConfigInChild(file);
  const { config } = loaded;
  const logger = createLogger(config.logging.level);
  const metrics = new Metrics();
  const audit = FileAuditSink.fromConfig(config.audit, logger, metrics);
  try {
    // The chain resumes (a break recorded after a crash) before the first request.
    await audit.open();
  } catch (err) {
    console.error(`${file}: audit: ${(err as Error).message}`);
    return 1;
  }
  const count = workerCount(config);
  const host: GateHost =
    count > 1
      ? new WorkerPool({ config, count, logger, metrics, audit })
      : new SingleGate(new GateServer({ config, logger, metrics, audit }), metrics);
  const killMetrics = new KillSwitchMetrics(metrics.registry);
  killMetrics.setEntries('config', configKillSet(config));
  // The shared kill set is followed here, on the main thread, and pushed to the gate threads.
  const sharedKills = config.redis
    ? new SharedKillSwitch({
        redis: config.redis,
        killSwitch: config.killSwitch,
        clock: systemClock,
        logger,
        metrics: killMetrics,
        redisMetrics: RedisMetrics.for(metrics.registry),
        onChange: (set) => host.setKills(set),
      })
    : undefined;
  const unenforced = ['killswitch.principal', 'killswitch.model'].filter((s) => !config.pipeline.stages.includes(s));
  if (sharedKills && unenforced.length > 0)
    logger.warn(
      { stages: unenforced },
      'redis is set but pipeline.stages leaves out kill switch stages: this replica does not enforce those kills',
    );
  let grpcPorts: number[];
  let admin: Awaited<ReturnType<typeof startAdminServer>>;
  try {
    if (sharedKills && !(await sharedKills.ready()))
      logger.warn("kill switch: Redis not read yet; serving with this config's kills until it is");
    ({ grpcPorts } = await host.start());
    const { adminAddress } = config.server;
    admin = await startAdminServer(adminAddress, host, {
      ready: () => gateReadiness(host, audit, count),
    }).catch((err: unknown) => {
      throw new ListenError('server.adminAddress', adminAddress, err);
    });
  } catch (err) {
    // Release whatever did start, so the process ends now with the one line below.
    host.forceShutdown();
    sharedKills?.close();
    await audit.close();
    if (!(err instanceof ListenError)) throw err;
    console.error(`${file}: ${err.message}`);
    return 1;
  }
  let current = config;
  const stopWatching = watchConfig(file, loaded, {
    onValid: (next) => {
      const pending = restartRequired(current, next);
      if (pending.length > 0)
        logger.warn({ file, fields: pending }, 'config reload: these changes take effect only after a restart');
      const prev = current;
      current = next;
      host.reload(next);
      killMetrics.setEntries('config', configKillSet(next));
      // What this reload killed or lifted (a key disabled in the config or its keys file, a
      // killSwitch entry) goes to every replica through Redis.
      void sharedKills?.reloaded(prev, next);
      logger.level = next.logging.level;
      metrics.configReloads.labels('applied').inc();
      logger.info({ file, apiKeys: next.identity.apiKeys.length }, 'config reloaded');
    },
    onInvalid: (err) => {
      metrics.configReloads.labels('rejected').inc();
      // The first line names the file at fault: the config, or its keys file.
      logger.error(
        { file, problems: err.problems, reason: err.message.split('\n')[0] },
        'config reload rejected; the previous config keeps serving',
      );
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
    sharedKills?.close();
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
  if (err instanceof ConfigError || err instanceof CommandError) {
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
