// Hour of the day and day of the week in one IANA time zone, for rule conditions ("only during
// office hours in Europe/Berlin"). Formatting with Intl on every request costs tens of
// microseconds; a zone's offset from UTC only changes at transitions, which fall on quarter
// hours of UTC (every offset in use is a multiple of 15 minutes and transitions happen at whole
// local minutes on such boundaries), so the offset is looked up once per quarter hour and reused.
import { isUtc } from '../config/time-zone.ts';

const QUARTER_HOUR_MS = 15 * 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface ZoneClock {
  /** 0-23 */
  hour(ms: number): number;
  /** 0 (Sunday) to 6, as CEL's getDayOfWeek() counts. */
  weekday(ms: number): number;
}

/** Throws a RangeError for a zone Intl does not know. */
export function zoneClock(timeZone: string): ZoneClock {
  const offsetAt = isUtc(timeZone) ? () => 0 : intlOffset(timeZone);
  const localDays = (ms: number) => Math.floor((ms + offsetAt(ms)) / DAY_MS);
  return {
    hour: (ms) => Math.floor(((((ms + offsetAt(ms)) % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS),
    // 1970-01-01 was a Thursday (4).
    weekday: (ms) => (((localDays(ms) + 4) % 7) + 7) % 7,
  };
}

/** The zone's offset from UTC at a moment, read with Intl once per quarter hour. */
function intlOffset(timeZone: string): (ms: number) => number {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
  });
  let slot = Number.NaN;
  let offsetMs = 0;
  return (ms) => {
    const s = Math.floor(ms / QUARTER_HOUR_MS);
    if (s !== slot) {
      const start = s * QUARTER_HOUR_MS;
      const parts: Record<string, number> = {};
      for (const p of format.formatToParts(start)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
      const local = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!);
      offsetMs = local - start;
      slot = s;
    }
    return offsetMs;
  };
}
