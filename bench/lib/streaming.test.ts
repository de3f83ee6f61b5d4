import { describe, expect, it } from 'vitest';
import type { StreamTiming } from './stream-client.ts';
import { streamingRows } from './streaming.ts';

/** A stream whose first token comes at `ttft` and then one every `gap` ms, `shift` ms late. */
function timing(ttft: number, gap: number, chunks: number, shift = 0): StreamTiming {
  const chunkMs = Array.from({ length: chunks }, (_, i) => ttft + i * gap + (i > 0 ? shift : 0));
  return { ok: true, status: 200, headersMs: 1, ttftMs: ttft, chunkMs, totalMs: chunkMs.at(-1)! + 1 };
}

describe('streamingRows', () => {
  const chunks = 10;
  const routes = [
    { route: 'direct', description: 'd', gates: [] },
    { route: 'passthrough', description: 'p', gates: [] },
    { route: 'governed', description: 'g', gates: [] },
  ];
  const timings = new Map<string, StreamTiming[]>([
    ['direct', [timing(10, 5, chunks), timing(12, 5, chunks)]],
    // 2 ms later from the start (request phases), nothing per chunk.
    ['passthrough', [timing(12, 5, chunks, 0), timing(14, 5, chunks, 0)]],
    // 2 ms later from the start and 0.5 ms more on every chunk after the first.
    ['governed', [timing(12, 5, chunks, 0.5), timing(14, 5, chunks, 0.5)]],
  ]);
  const { routes: rows, perChunkRoundTripMs } = streamingRows(routes, timings, new Map([['governed', 0.01]]), chunks);

  it('reports TTFT added against the direct route', () => {
    expect(rows[0]!.ttftAddedMs).toBeNull();
    expect(rows[1]!.ttftAddedMs!.p50).toBe(2);
    expect(rows[2]!.ttftAddedMs!.p50).toBe(2);
  });

  it('separates what every chunk pays from the shift at the start', () => {
    expect(rows[1]!.chunkDelayAddedMs!.p50).toBe(2);
    expect(rows[2]!.chunkDelayAddedMs!.p50).toBe(2.5);
    expect(perChunkRoundTripMs).toEqual({ p50: 0.5, p99: 0.5, against: 'passthrough' });
  });

  it('counts a stream cut short as an error, not as a sample', () => {
    const short = new Map(timings);
    short.set('governed', [...timings.get('governed')!, timing(12, 5, 3)]);
    const { routes: r } = streamingRows(routes, short, new Map(), chunks);
    expect(r[2]!.requests).toBe(3);
    expect(r[2]!.errors).toEqual({ '3 of 10 chunks': 1 });
    expect(r[2]!.gateCpuMsPerRequest).toBeNull();
  });
});
