// pino JSON logs. Secrets stay out by construction: the gate never logs headers or bodies, and
// these paths are redacted as a second line of defence should a future call site pass them.
import { pino } from 'pino';

export type Logger = pino.Logger;

export const REDACT_PATHS = [
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  '*.authorization',
  'apiKey',
  'key',
  'body',
  'prompt',
  'messages',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'lm-gate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
