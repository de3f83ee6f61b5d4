// grpc-js writes its own problems to stderr as "E message" lines, outside the gate's JSON log;
// a log shipper parsing JSON lines drops or chokes on them. Route them through pino instead.
import { setLogger } from '@grpc/grpc-js';
import type { Logger } from './logger.ts';

/** grpc-js logs a failed bind before handing the same error to the caller, which reports it
 * with the config field's name (ListenError); logging it twice would say it less well first. */
const REPORTED_BY_CALLER = /^No address added out of total \d+ resolved/;

export function routeGrpcLogs(logger: Logger): void {
  const at =
    (level: 'error' | 'info' | 'debug') =>
    (message?: unknown, ...rest: unknown[]) => {
      const text = [message, ...rest].map(String).join(' ');
      if (REPORTED_BY_CALLER.test(text)) return;
      logger[level]({ component: 'grpc-js' }, text);
    };
  setLogger({ error: at('error'), info: at('info'), debug: at('debug') });
}
