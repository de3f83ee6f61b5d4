// Preloaded into a bench gate (`node --import bench/lib/rss-probe.js`) by `npm run bench:rss`:
// on SIGUSR2 it writes the main thread's memory figures (process.memoryUsage, V8's heap and
// heap-space statistics) as one JSON line to LMG_RSS_PROBE. Plain JavaScript on purpose: a
// TypeScript preload would make Node load its type stripper into the gate, about 17 MiB of RSS,
// which is what this probe exists to measure. Bench only: never in a product process.
import { appendFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

const out = process.env.LMG_RSS_PROBE;
if (!out) throw new Error('rss-probe: set LMG_RSS_PROBE to the file to append to');

// Garbage collections so far on the main thread, count and milliseconds by kind: what a smaller
// heap costs shows here first, steadier than CPU seconds on a shared machine.
const gc = {
  minor: { count: 0, ms: 0, maxMs: 0 },
  major: { count: 0, ms: 0, maxMs: 0 },
  other: { count: 0, ms: 0, maxMs: 0 },
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    const slot =
      kind === constants.NODE_PERFORMANCE_GC_MINOR
        ? gc.minor
        : kind === constants.NODE_PERFORMANCE_GC_MAJOR
          ? gc.major
          : gc.other;
    slot.count++;
    slot.ms += e.duration;
    slot.maxMs = Math.max(slot.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });

process.on('SIGUSR2', () => {
  const spaces = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = s.space_size;
  const h = getHeapStatistics();
  appendFileSync(
    out,
    `${JSON.stringify({ memory: process.memoryUsage(), heap: { total: h.total_heap_size, used: h.used_heap_size, limit: h.heap_size_limit, malloced: h.malloced_memory, peakMalloced: h.peak_malloced_memory, external: h.external_memory }, spaces, gc })}\n`,
  );
  // The longest pause is per reading: each phase gets its own.
  for (const slot of Object.values(gc)) slot.maxMs = 0;
});
