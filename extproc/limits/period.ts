// Calendar periods in an IANA time zone: the day, the week (from Monday) or the month a moment
// falls in, as a label ("2026-11-01", the first day) and the epoch ms it ends at. A budget's
// counter key carries the label, so a new period starts from nothing on every replica at once
// whatever their clocks, and the counter expires when its period ends.

import { isUtc } from '../config/time-zone.ts';

export type CalendarPeriod = 'day' | 'week' | 'month';

export interface PeriodSpan {
  readonly label: string;
  readonly startMs: number;
  readonly endMs: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock fields of `t` in the zone. */
function wall(t: number, timeZone: string): { y: number; m: number; d: number; hh: number; mm: number; ss: number } {
  if (isUtc(timeZone)) {
    const u = new Date(t);
    return {
      y: u.getUTCFullYear(),
      m: u.getUTCMonth() + 1,
      d: u.getUTCDate(),
      hh: u.getUTCHours(),
      mm: u.getUTCMinutes(),
      ss: u.getUTCSeconds(),
    };
  }
  const out: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(t)) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return { y: out.year!, m: out.month!, d: out.day!, hh: out.hour!, mm: out.minute!, ss: out.second! };
}

/** Epoch ms of local midnight starting y-m-d in the zone (DST-safe: the offset is read at the
 * result, twice, since a change of offset can fall between the guess and the answer). */
function midnight(y: number, m: number, d: number, timeZone: string): number {
  const target = Date.UTC(y, m - 1, d);
  let t = target;
  for (let i = 0; i < 3; i++) {
    const w = wall(t, timeZone);
    const shown = Date.UTC(w.y, w.m - 1, w.d, w.hh, w.mm, w.ss);
    const next = t - (shown - target);
    if (next === t) break;
    t = next;
  }
  return t;
}

const pad = (n: number) => String(n).padStart(2, '0');

export function periodOf(now: number, period: CalendarPeriod, timeZone: string): PeriodSpan {
  const w = wall(now, timeZone);
  let start: Date;
  let end: Date;
  if (period === 'day') {
    start = new Date(Date.UTC(w.y, w.m - 1, w.d));
    end = new Date(Date.UTC(w.y, w.m - 1, w.d + 1));
  } else if (period === 'week') {
    const dow = (new Date(Date.UTC(w.y, w.m - 1, w.d)).getUTCDay() + 6) % 7; // Monday 0
    start = new Date(Date.UTC(w.y, w.m - 1, w.d - dow));
    end = new Date(Date.UTC(w.y, w.m - 1, w.d - dow + 7));
  } else {
    start = new Date(Date.UTC(w.y, w.m - 1, 1));
    end = new Date(Date.UTC(w.y, w.m, 1));
  }
  const s = [start.getUTCFullYear(), start.getUTCMonth() + 1, start.getUTCDate()] as const;
  const e = [end.getUTCFullYear(), end.getUTCMonth() + 1, end.getUTCDate()] as const;
  return {
    label: `${s[0]}-${pad(s[1])}-${pad(s[2])}`,
    startMs: midnight(s[0], s[1], s[2], timeZone),
    endMs: midnight(e[0], e[1], e[2], timeZone),
  };
}

/** periodOf, recomputed only once the cached period has ended (one Intl call per period, not
 * per request). */
export class PeriodClock {
  private span: PeriodSpan | undefined;
  private readonly period: CalendarPeriod;
  private readonly timeZone: string;
  constructor(period: CalendarPeriod, timeZone: string) {
    this.period = period;
    this.timeZone = timeZone;
  }
  at(now: number): PeriodSpan {
    const s = this.span;
    if (s !== undefined && now >= s.startMs && now < s.endMs) return s;
    this.span = periodOf(now, this.period, this.timeZone);
    return this.span;
  }
}
