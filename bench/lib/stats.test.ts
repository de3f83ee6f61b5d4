import { describe, expect, it } from 'vitest';
import { difference, percentile, percentiles } from './stats.ts';

describe('percentile (nearest rank)', () => {
  const s = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const table: [number, number][] = [
    [0, 1],
    [10, 1],
    [50, 5],
    [51, 6],
    [90, 9],
    [99, 10],
    [100, 10],
  ];
  for (const [p, want] of table) it(`p${p} of 1..10 is ${want}`, () => expect(percentile(s, p)).toBe(want));

  it('is NaN for no samples', () => expect(percentile(new Float64Array(0), 50)).toBeNaN());

  it('p99.9 needs a thousand samples to differ from the max', () => {
    const big = Float64Array.from({ length: 2000 }, (_, i) => i + 1);
    expect(percentile(big, 99.9)).toBe(1998);
    expect(percentile(big, 100)).toBe(2000);
  });
});

describe('percentiles and difference', () => {
  it('sorts numerically, not as strings', () => {
    expect(percentiles([10, 9, 100, 2]).max).toBe(100);
    expect(percentiles([10, 9, 100, 2]).p50).toBe(9);
  });

  it('subtracts percentile by percentile', () => {
    const d = difference(
      { p50: 3, p90: 5, p99: 9, p99_9: 12, max: 20 },
      { p50: 2, p90: 4, p99: 6, p99_9: 10, max: 30 },
    );
    expect(d).toEqual({ p50: 1, p90: 1, p99: 3, p99_9: 2, max: -10 });
  });
});
