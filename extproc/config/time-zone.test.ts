import { afterEach, describe, expect, it } from 'vitest';
import { periodOf } from '../limits/period.ts';
import { zoneClock } from '../policy/zone-clock.ts';
import { configSchema } from './schema.ts';
import { isTimeZone } from './time-zone.ts';

// 'Etc/Universal' is UTC to Intl but not one of the names read without it: the oracle.
const VIA_INTL = 'Etc/Universal';

const Original = Intl.DateTimeFormat;
let made: string[] = [];
/** Counts the formatters made (by zone) from here to the end of the test. */
function spyOnFormatters(): void {
  made = [];
  Intl.DateTimeFormat = class extends Original {
    constructor(locales?: string | string[], options?: Intl.DateTimeFormatOptions) {
      super(locales, options);
      made.push(String(options?.timeZone));
    }
  } as typeof Intl.DateTimeFormat;
}
afterEach(() => {
  Intl.DateTimeFormat = Original;
});

describe('UTC without Intl', () => {
  it('the policy clock and the budget periods agree with Intl over two years of hours', () => {
    const utc = zoneClock('UTC');
    const intl = zoneClock(VIA_INTL);
    for (let ms = Date.parse('2026-01-01T00:07:00Z'); ms < Date.parse('2028-01-01T00:00:00Z'); ms += 3_600_000) {
      expect([utc.hour(ms), utc.weekday(ms)]).toEqual([intl.hour(ms), intl.weekday(ms)]);
      if (ms % (24 * 3_600_000) < 3_600_000)
        for (const p of ['day', 'week', 'month'] as const)
          expect(periodOf(ms, p, 'UTC')).toEqual(periodOf(ms, p, VIA_INTL));
    }
  });

  it('a config whose zones are UTC makes no Intl formatter: validation, the policy clock, budget periods', () => {
    spyOnFormatters();
    const config = configSchema.parse({
      policy: {
        timeZone: 'UTC',
        rules: [{ id: 'no-night', action: 'DENY', when: 'time.localHour() < 6' }],
      },
      limits: { budgets: [{ id: 'monthly', scope: 'tenant', amount: 10, unit: 'currency', period: 'month' }] },
    });
    expect(isTimeZone('Etc/UTC')).toBe(true);
    zoneClock(config.policy.timeZone).hour(Date.now());
    periodOf(Date.now(), 'month', config.limits.budgets[0]!.timeZone);
    expect(made).toEqual([]);
    // The spy sees a zone that needs Intl.
    zoneClock('Europe/Berlin').hour(Date.now());
    expect(made).toContain('Europe/Berlin');
  });

  it('an unknown zone is still refused, through Intl', () => {
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(() => zoneClock('Mars/Olympus_Mons')).toThrow(RangeError);
  });
});
