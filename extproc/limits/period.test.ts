import { describe, expect, it } from 'vitest';
import { periodOf } from './period.ts';

describe('periodOf', () => {
  it('months, weeks (from Monday) and days in the zone, with their ends', () => {
    const t = Date.parse('2026-11-24T12:00:00Z'); // a Tuesday
    expect(periodOf(t, 'month', 'UTC')).toEqual({
      label: '2026-11-01',
      startMs: Date.parse('2026-11-01T00:00:00Z'),
      endMs: Date.parse('2026-12-01T00:00:00Z'),
    });
    expect(periodOf(t, 'week', 'UTC').label).toBe('2026-11-23');
    expect(periodOf(t, 'day', 'Asia/Tokyo')).toMatchObject({
      label: '2026-11-24',
      startMs: Date.parse('2026-11-23T15:00:00Z'),
      endMs: Date.parse('2026-11-24T15:00:00Z'),
    });
  });

  it('a moment is in the local period: 23:30 UTC on the 31st is already next month in Berlin', () => {
    const t = Date.parse('2026-10-31T23:30:00Z');
    expect(periodOf(t, 'month', 'UTC').label).toBe('2026-10-01');
    const berlin = periodOf(t, 'month', 'Europe/Berlin');
    expect(berlin.label).toBe('2026-11-01');
    expect(berlin.startMs).toBe(Date.parse('2026-10-31T23:00:00Z'));
  });

  it('a day with a DST change is 23 or 25 hours long', () => {
    const spring = periodOf(Date.parse('2026-03-29T12:00:00Z'), 'day', 'Europe/Berlin');
    expect(spring.endMs - spring.startMs).toBe(23 * 3_600_000);
    const autumn = periodOf(Date.parse('2026-10-25T12:00:00Z'), 'day', 'Europe/Berlin');
    expect(autumn.endMs - autumn.startMs).toBe(25 * 3_600_000);
  });
});
