// How long and how hard each part of a bench run goes. `full` is `npm run bench` (under 10
// minutes on a 2-core machine, installs included); `smoke` is `npm run bench:smoke`, a few
// seconds per part that prove the harness works end to end. `npm run bench:peers` (-- --smoke)
// runs the same plans (no CPU profile) over direct, governed and Envoy AI Gateway.

export interface Plan {
  kind: 'full' | 'smoke';
  /** Open-loop rates through each gated route (the direct route gets the same rate alongside). */
  rates: number[];
  /** Each (profile, rate) is measured in this many slices, alternating the profile order. */
  rounds: number;
  sliceS: number;
  warmupS: number;
  /** Seconds of unmeasured load that re-warm a phase's gates when they come back to work after
   * the phases before (the DLP phase: its gate served nothing meanwhile). */
  phaseWarmupS: number;
  /** Closed-loop worker counts for the saturation sweep, and seconds per step. */
  workers: number[];
  saturationS: number;
  /** Streaming: rounds of `streamsPerRoute` concurrent streams on every route at once. */
  streamRounds: number;
  streamsPerRoute: number;
  chunks: number;
  chunkDelayMs: number;
  /** Seconds of governed load under the CPU profiler; 0 skips it. */
  profileS: number;
  profileRate: number;
  envoyConcurrency: number;
}

export const FULL: Plan = {
  kind: 'full',
  // Per route; Envoy carries twice this (the direct route alongside). On the 2-core reference
  // machine, where the load generator, Envoy, the mock and the gates share both cores, 500 is
  // close to saturation (see saturation in the result), so the third rate shows the bend. 100
  // and 300 are the rates the performance issue compares with Envoy AI Gateway at.
  rates: [100, 300, 500],
  rounds: 3,
  sliceS: 8,
  // Long enough for V8 to tier the gate's hot code up before anything is measured: while it
  // compiles, a request now and then waits 1-4 ms (bench:alloc at 100 req/s counted 15 such
  // waits in 30 s after a 5 s warm-up, 9 after 30 s, 6 after 60 s). A gate that has run a while
  // is past them; the figures are its steady state. AI Gateway, compiled ahead of time, gets the
  // same warm-up.
  warmupS: 20,
  // The DLP phase follows ~3.5 minutes in which its gate served nothing.
  phaseWarmupS: 10,
  workers: [4, 16, 64],
  saturationS: 5,
  streamRounds: 20,
  streamsPerRoute: 3,
  chunks: 200,
  // 100 tokens a second per stream, a fast model; 200 chunks take two seconds.
  chunkDelayMs: 10,
  profileS: 10,
  profileRate: 500,
  envoyConcurrency: 2,
};

export const SMOKE: Plan = {
  kind: 'smoke',
  rates: [50],
  rounds: 1,
  sliceS: 1,
  warmupS: 1,
  phaseWarmupS: 1,
  workers: [4],
  saturationS: 1,
  streamRounds: 1,
  streamsPerRoute: 2,
  chunks: 20,
  chunkDelayMs: 2,
  profileS: 0,
  profileRate: 100,
  envoyConcurrency: 2,
};
