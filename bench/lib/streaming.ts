// Figures for the streaming profile, from per-token timings of every route measured at once.
//
// - TTFT added: a percentile of time to first token through the route minus the same
//   percentile direct.
// - Chunk delay added: for each chunk position i, the median (and p99) arrival time of chunk i
//   through the route minus the same direct; the median over positions is reported. It
//   includes what the request phases add before upstream starts, so it is compared between
//   routes, never read alone.
// - Per-chunk round trip: chunk delay added with the response read STREAMED (one gRPC round
//   trip per chunk, governed) minus the same without reading it (passthrough).

import type { StreamingRow } from './result.ts';
import { difference, mapValues, median, percentile, percentiles, roundMs } from './stats.ts';
import type { StreamTiming } from './stream-client.ts';
import type { BenchGate } from './topology.ts';

export interface StreamRoute {
  route: string;
  description: string;
  /** The gates this route's streams go through (their CPU is summed). */
  gates: BenchGate[];
}

export function streamingRows(
  routes: StreamRoute[],
  timings: Map<string, StreamTiming[]>,
  cpuS: Map<string, number>,
  chunks: number,
): { routes: StreamingRow[]; perChunkRoundTripMs: { p50: number; p99: number; against: string } | null } {
  const ok = (r: string) => (timings.get(r) ?? []).filter((t) => t.ok && t.chunkMs.length === chunks);
  const direct = ok('direct');
  const directTtft = percentiles(direct.map((t) => t.ttftMs));
  const directChunks = perPosition(direct, chunks);
  const rows: StreamingRow[] = routes.map((r) => {
    const all = timings.get(r.route) ?? [];
    const good = ok(r.route);
    const errors: Record<string, number> = {};
    for (const t of all) {
      if (good.includes(t)) continue;
      const why = t.error ?? (t.chunkMs.length !== chunks ? `${t.chunkMs.length} of ${chunks} chunks` : 'failed');
      errors[why] = (errors[why] ?? 0) + 1;
    }
    const ttft = percentiles(good.map((t) => t.ttftMs));
    const gaps: number[] = [];
    for (const t of good) for (let i = 1; i < t.chunkMs.length; i++) gaps.push(t.chunkMs[i]! - t.chunkMs[i - 1]!);
    const sortedGaps = Float64Array.from(gaps).sort();
    const mine = perPosition(good, chunks);
    const isDirect = r.route === 'direct';
    const cpu = cpuS.get(r.route);
    return {
      route: r.route,
      description: r.description,
      requests: all.length,
      errors,
      ttftMs: mapValues(ttft, roundMs),
      ttftAddedMs: isDirect ? null : mapValues(difference(ttft, directTtft), roundMs),
      chunkDelayAddedMs: isDirect ? null : chunkDelay(mine, directChunks),
      gapMs: { p50: roundMs(percentile(sortedGaps, 50)), p99: roundMs(percentile(sortedGaps, 99)) },
      totalMs: mapValues(percentiles(good.map((t) => t.totalMs)), roundMs),
      gateCpuMsPerRequest: cpu === undefined ? null : roundMs((cpu * 1000) / Math.max(1, all.length)),
    };
  });
  const inline = rows.find((r) => r.route === 'governed')?.chunkDelayAddedMs;
  // Passthrough reads no response body and runs no stage; what governed adds to each chunk
  // beyond it is the STREAMED round trip (its stages cost tens of microseconds).
  const floorRoute = rows.find((r) => r.route === 'passthrough');
  const floor = floorRoute?.chunkDelayAddedMs;
  const perChunkRoundTripMs =
    inline && floor && floorRoute
      ? { p50: roundMs(inline.p50 - floor.p50), p99: roundMs(inline.p99 - floor.p99), against: floorRoute.route }
      : null;
  return { routes: rows, perChunkRoundTripMs };
}

interface Positions {
  p50: number[];
  p99: number[];
}

/** Median and p99 arrival time of each chunk position over requests. */
function perPosition(ts: StreamTiming[], chunks: number): Positions {
  const out: Positions = { p50: [], p99: [] };
  for (let i = 0; i < chunks; i++) {
    const at = Float64Array.from(ts.map((t) => t.chunkMs[i]!)).sort();
    out.p50.push(percentile(at, 50));
    out.p99.push(percentile(at, 99));
  }
  return out;
}

function chunkDelay(mine: Positions, direct: Positions): { p50: number; p99: number } {
  // Position 0 is the first token, reported as TTFT; the rest are the steady stream.
  const d50 = mine.p50.slice(1).map((v, i) => v - direct.p50[i + 1]!);
  const d99 = mine.p99.slice(1).map((v, i) => v - direct.p99[i + 1]!);
  return { p50: roundMs(median(d50)), p99: roundMs(median(d99)) };
}
