import { describe, expect, it } from 'vitest';
import { ASYNC_FOR_MS, REPEAT_WITHIN_MS, SlowWriteGuard, STALLED_WRITE_MS, type WriteVerdict } from './slow-writes.ts';

/** Writes as [took ms, ended at ms], and what the guard says of each. */
const CASES: { name: string; writes: [number, number][]; verdicts: WriteVerdict[] }[] = [
  {
    name: 'page-cache writes stay synchronous',
    writes: [
      [0.01, 0],
      [0.5, 10],
      [2, 20],
    ],
    verdicts: ['fast', 'fast', 'fast'],
  },
  {
    name: 'one preemption (a lone slow write) does not switch',
    writes: [
      [0.01, 0],
      [3, 10],
      [0.01, 20],
      [0.01, 30],
    ],
    verdicts: ['fast', 'slow', 'fast', 'fast'],
  },
  {
    name: 'slow writes seconds apart (sporadic preemptions) never switch',
    writes: [
      [4, 0],
      [4, REPEAT_WITHIN_MS + 1],
      [4, 2 * REPEAT_WITHIN_MS + 2],
    ],
    verdicts: ['slow', 'slow', 'slow'],
  },
  {
    name: 'a second slow write within a second switches (a slow file repeats)',
    writes: [
      [3, 0],
      [0.01, 100],
      [3, REPEAT_WITHIN_MS],
    ],
    verdicts: ['slow', 'fast', 'switch'],
  },
  {
    name: 'one write stalled past what a scheduler delay explains switches at once',
    writes: [[STALLED_WRITE_MS + 1, 0]],
    verdicts: ['switch'],
  },
  {
    name: 'back to synchronous after the switch, a lone slow write is judged afresh',
    writes: [
      [3, 0],
      [3, 1],
      [3, 1 + ASYNC_FOR_MS + 1],
    ],
    verdicts: ['slow', 'switch', 'slow'],
  },
];

describe('SlowWriteGuard', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const guard = new SlowWriteGuard();
      expect(c.writes.map(([took, at]) => guard.observe(took, at))).toEqual(c.verdicts);
    });
  }

  it('keeps appends off the event loop for ASYNC_FOR_MS after a switch, then tries again', () => {
    const guard = new SlowWriteGuard();
    expect(guard.syncAllowed(0)).toBe(true);
    guard.observe(3, 0);
    expect(guard.syncAllowed(1)).toBe(true);
    expect(guard.observe(3, 5)).toBe('switch');
    expect(guard.syncAllowed(5 + ASYNC_FOR_MS - 1)).toBe(false);
    expect(guard.syncAllowed(5 + ASYNC_FOR_MS)).toBe(true);
  });

  it('takes the slow threshold from its caller (tests: every write slow, or none)', () => {
    const always = new SlowWriteGuard(-1);
    expect([always.observe(0, 0), always.observe(0, 1)]).toEqual(['slow', 'switch']);
    const never = new SlowWriteGuard(10_000);
    expect(never.observe(STALLED_WRITE_MS + 1, 0)).toBe('fast');
  });
});
