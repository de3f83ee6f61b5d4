// Percentiles over raw samples. The load generator hands us every request's latency, so the
// figures are exact order statistics (nearest rank), not histogram bucket bounds.

export const PERCENTILES = [50, 90, 99, 99.9, 100] as const;
export type PercentileKey = 'p50' | 'p90' | 'p99' | 'p99_9' | 'max';
export type Percentiles = Record<PercentileKey, number>;

const KEYS: Record<(typeof PERCENTILES)[number], PercentileKey> = {
  50: 'p50',
  90: 'p90',
  99: 'p99',
  99.9: 'p99_9',
  100: 'max',
};

/** Nearest-rank percentile of an ascending array: the smallest sample with at least p% of the
 * samples at or below it. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  // The epsilon keeps float error from pushing an exact rank up by one (99.9% of 2000 is
  // 1998.0000000000002 in floating point).
  const rank = Math.ceil((p / 100) * sorted.length - 1e-9);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function percentiles(samples: readonly number[] | Float64Array): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  const out = {} as Percentiles;
  for (const p of PERCENTILES) out[KEYS[p]] = percentile(sorted, p);
  return out;
}

/** Added latency: each percentile through the gate minus the same percentile of the direct
 * route measured alongside it. Requests are not paired, so this compares distributions. */
export function difference(gated: Percentiles, direct: Percentiles): Percentiles {
  const out = {} as Percentiles;
  for (const k of Object.values(KEYS)) out[k] = gated[k] - direct[k];
  return out;
}

export function median(samples: readonly number[]): number {
  return percentile(Float64Array.from(samples).sort(), 50);
}

/** Rounds for the report: milliseconds to microsecond precision. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function mapValues<T extends Record<string, number>>(o: T, f: (v: number) => number): T {
  const out = {} as Record<string, number>;
  for (const [k, v] of Object.entries(o)) out[k] = f(v);
  return out as T;
}
