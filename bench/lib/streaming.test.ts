import { describe, expect, it } from 'vitest';
import type { StreamTiming } from './stream-client.ts';
import { streamingRows } from './streaming.ts';

/** A stream whose first token comes at `ttft`, then one every `gap` ms; each chunk's trip
 * from the mock is `trip` ms. */
function timing(ttft: number, gap: number, chunks: number, trip: number): StreamTiming {
  const chunkMs = Array.from({ length: chunks }, (_, i) => ttft + i * gap);
  return {
    ok: true,
    status: 200,
    headersMs: 1,
    ttftMs: ttft,
    chunkMs,
    tripMs: chunkMs.map(() => trip),
    totalMs: chunkMs.at(-1)! + 1,
  };
}

describe('streamingRows', () => {
  const chunks = 10;
  const routes = [
    { route: 'direct', description: 'd', gates: [] },
    { route: 'passthrough', description: 'p', gates: [] },
    { route: 'governed', description: 'g', gates: [] },
  ];
  const timings = new Map<string, StreamTiming[]>([
    ['direct', [timing(10, 5, chunks, 0.2), timing(12, 5, chunks, 0.2)]],
    // 2 ms later to the first token (request phases); chunks pass untouched.
    ['passthrough', [timing(12, 5, chunks, 0.2), timing(14, 5, chunks, 0.2)]],
    // The same, and every chunk waits 0.5 ms for its round trip to the gate.
    ['governed', [timing(12, 5, chunks, 0.7), timing(14, 5, chunks, 0.7)]],
  ]);
  const { routes: rows, perChunkOverheadMs } = streamingRows(routes, timings, new Map([['governed', 0.01]]), chunks);

  it('reports TTFT added against the direct route', () => {
    expect(rows[0]!.ttftAddedMs).toBeNull();
    expect(rows[1]!.ttftAddedMs!.p50).toBe(2);
    expect(rows[2]!.ttftAddedMs!.p50).toBe(2);
  });

  it("separates what every chunk pays from the shift at the start: each chunk's trip", () => {
    expect(rows[1]!.chunkTripAddedMs).toEqual({ p50: 0, p99: 0 });
    expect(rows[2]!.chunkTripAddedMs).toEqual({ p50: 0.5, p99: 0.5 });
    expect(perChunkOverheadMs).toEqual({ p50: 0.5, p99: 0.5 });
    expect(rows[2]!.gateCpuMsPerRequest).toBe(5);
  });

  it('counts a stream cut short as an error, not as a sample', () => {
    const short = new Map(timings);
    short.set('governed', [...timings.get('governed')!, timing(12, 5, 3, 0.7)]);
    const { routes: r } = streamingRows(routes, short, new Map(), chunks);
    expect(r[2]!.requests).toBe(3);
    expect(r[2]!.errors).toEqual({ '3 of 10 chunks': 1 });
    expect(r[2]!.gateCpuMsPerRequest).toBeNull();
  });
});
