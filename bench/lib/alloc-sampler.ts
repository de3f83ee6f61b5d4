// Preloaded into a bench gate (`node --import bench/lib/alloc-sampler.ts`): V8's sampling heap
// profiler, counting objects the garbage collector has since freed too, which is what a
// per-request allocation figure needs (`--heap-prof` keeps only what is still alive at exit).
// SIGUSR2 starts sampling, so start-up is left out; the profile is written when the process
// exits (the gate exits after its drain on SIGTERM). Bench only: never in a product process.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.LMG_ALLOC_PROFILE;
if (!out) throw new Error('alloc-sampler: set LMG_ALLOC_PROFILE to the file to write');
// Bytes between samples: V8 picks each sample at a random point with this mean, so the
// profile's sizes are an unbiased estimate of every allocation's bytes.
const interval = Number(process.env.LMG_ALLOC_INTERVAL ?? 8192);
// LMG_ALLOC_SURVIVORS=1: leave out what a scavenge freed, so the profile holds what outlived
// the young generation (promoted to old space: what mark-compacts must then collect).
const survivorsOnly = process.env.LMG_ALLOC_SURVIVORS === '1';

const session = new Session();
session.connect();
let sampling = false;
process.on('SIGUSR2', () => {
  if (sampling) return;
  sampling = true;
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', {
    samplingInterval: interval,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: !survivorsOnly,
  });
});
process.on('exit', () => {
  if (!sampling) return;
  // The in-process session answers synchronously, so the exit handler can still write.
  session.post('HeapProfiler.stopSampling', (err, r) => {
    if (err) throw err;
    writeFileSync(out, JSON.stringify(r.profile));
  });
});
