import { describe, expect, it } from 'vitest';
import { gateMillis, nearestRank } from './gate-time.ts';

describe('gate time from the audit log', () => {
  it('reads latency_ms.gate of whole request records only', () => {
    const log = [
      '{"type":"checkpoint","seq":0,"records":0}',
      '{"type":"request","seq":1,"latency_ms":{"total":3.1,"gate":0.25,"phases":{}}}',
      '{"type":"request","seq":2,"latency_ms":{"total":2.0,"gate":0.5,"phases":{}}}',
      '{"type":"request","seq":3,"latency_ms":{"tot',
    ].join('\n');
    expect(gateMillis(log)).toEqual([0.25, 0.5]);
  });

  it('takes percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(nearestRank(xs, 50)).toBe(50);
    expect(nearestRank(xs, 99)).toBe(99);
    expect(nearestRank(xs, 100)).toBe(100);
    expect(nearestRank([], 50)).toBeNaN();
  });
});
