// Figures for the streaming profile, from per-token timings of every route measured at once.
//
// - TTFT added: a percentile of time to first token through the route minus the same
//   percentile direct.
// - Chunk trip: each chunk's time from the mock's write (stamped in the chunk) to the client's
//   read, pooled over chunks; what a route adds to every chunk is its trip minus the direct
//   route's. Reading the response STREAMED costs one gRPC round trip per chunk, and this is
//   where it shows; a route that does not hold chunks adds about nothing.
import type { StreamingRow } from './result.ts';
import { difference, mapValues, percentile, percentiles, roundMs } from './stats.ts';
import type { StreamTiming } from './stream-client.ts';
import type { BenchGate } from './topology.ts';

export interface StreamRoute {
  route: string;
  /** The route may join upstream's chunks (DLP's hold-back releases held text with a later
   * event), so a complete stream can have fewer chunks than upstream sent. */
  mayJoinChunks?: boolean;
  description: string;
  /** The gates this route's streams go through (their CPU is summed). */
  gates: BenchGate[];
}

export interface StreamingFigures {
  routes: StreamingRow[];
  /** What reading the response STREAMED (governed) adds to every chunk's trip. */
  perChunkOverheadMs: { p50: number; p99: number } | null;
}

export function streamingRows(
  routes: StreamRoute[],
  timings: Map<string, StreamTiming[]>,
  cpuS: Map<string, number>,
  chunks: number,
): StreamingFigures {
  const joins = new Set(routes.filter((r) => r.mayJoinChunks).map((r) => r.route));
  const ok = (r: string) =>
    (timings.get(r) ?? []).filter(
      (t) => t.ok && (t.chunkMs.length === chunks || (joins.has(r) && t.chunkMs.length > 0)),
    );
  const direct = ok('direct');
  const directTtft = percentiles(direct.map((t) => t.ttftMs));
  const directTrip = tripOf(direct);
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
    const trip = tripOf(good);
    const isDirect = r.route === 'direct';
    const cpu = cpuS.get(r.route);
    return {
      route: r.route,
      description: r.description,
      requests: all.length,
      errors,
      ttftMs: mapValues(ttft, roundMs),
      ttftAddedMs: isDirect ? null : mapValues(difference(ttft, directTtft), roundMs),
      chunkTripMs: { p50: roundMs(trip.p50), p99: roundMs(trip.p99) },
      chunkTripAddedMs: isDirect
        ? null
        : { p50: roundMs(trip.p50 - directTrip.p50), p99: roundMs(trip.p99 - directTrip.p99) },
      gapMs: { p50: roundMs(percentile(sortedGaps, 50)), p99: roundMs(percentile(sortedGaps, 99)) },
      totalMs: mapValues(percentiles(good.map((t) => t.totalMs)), roundMs),
      gateCpuMsPerRequest: cpu === undefined ? null : roundMs((cpu * 1000) / Math.max(1, all.length)),
    };
  });
  const governed = rows.find((r) => r.route === 'governed')?.chunkTripAddedMs ?? null;
  return { routes: rows, perChunkOverheadMs: governed };
}

/** Trip percentiles over every chunk of these streams. */
function tripOf(ts: StreamTiming[]): { p50: number; p99: number } {
  const all = Float64Array.from(ts.flatMap((t) => t.tripMs)).sort();
  return { p50: percentile(all, 50), p99: percentile(all, 99) };
}
