// Times on the command line: `--expires 90d` or an RFC 3339 date-time, `--grace 7d`. Durations
// are a count and one unit (s, m, h, d, w): enough to say how long a key or a grace lasts, and
// nothing to misread (is "1M" a minute or a month?).
import { rfc3339 } from '../identity/config.ts';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Beyond this a duration is a typo, and Date would overflow long before it mattered. */
const MAX_MS = 100 * 366 * UNIT_MS.d;

/** Milliseconds of "90d", "12h", "30m", "45s", "2w"; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})([smhdw])$/.exec(text);
  if (m === null) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms > 0 && ms <= MAX_MS ? ms : undefined;
}

/** RFC 3339 in UTC to the second: what the CLI writes into a keys file. */
export function rfc3339At(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** An --expires value (a duration from `now`, or an RFC 3339 date-time) as the RFC 3339 text to
 * store; a message saying what is wrong when it is neither or not in the future. */
export function parseExpiry(text: string, now: number): { at: string } | { problem: string } {
  const ms = parseDuration(text);
  if (ms !== undefined) return { at: rfc3339At(now + ms) };
  if (!rfc3339.safeParse(text).success)
    return {
      problem: `"${text}" is neither a duration (90d, 12h, 30m, 2w) nor an RFC 3339 date-time with a time zone`,
    };
  if (Date.parse(text) <= now) return { problem: `${text} is not in the future` };
  return { at: text };
}
