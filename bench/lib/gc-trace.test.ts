import { expect, it } from 'vitest';
import { summarizeGcNvp, summarizeGcTrace } from './gc-trace.ts';

const TRACE = `
[1:0xb9c7000]     8600 ms: Scavenge 40.1 (52.3) -> 33.0 (52.3) MB, pooled: 0 MB, 1.50 / 0.00 ms  (average mu = 0.992, current mu = 0.993) task;
[1:0xb9c7000]     8700 ms: Scavenge 41.1 (52.3) -> 34.0 (52.3) MB, 2.50 / 0.00 ms  (average mu = 0.992, current mu = 0.993) allocation failure;
[1:0xb9c7000]     8782 ms: Mark-Compact 55.3 (68.5) -> 30.9 (66.5) MB, pooled: 2 MB, 8.91 / 0.01 ms  (+ 16.2 ms in 176 steps since start of marking, biggest step 5.1 ms, walltime since start of marking 32 ms) (average mu = 0.992, current mu = 0.993) finalize incremental marking via task; GC in old space requested
{"level":"warn","msg":"not a gc line"}
[1:0xb9c7000]     9000 ms: Weird-GC 1 MB
`;

it('sums pauses by kind, with incremental marking steps apart, and keeps the reasons', () => {
  const s = summarizeGcTrace(TRACE);
  expect(s.kinds.map((k) => [k.kind, k.count, Number(k.totalMs.toFixed(2)), k.maxMs])).toEqual([
    ['incremental marking steps', 1, 16.2, 5.1],
    ['Mark-Compact', 1, 8.91, 8.91],
    ['Scavenge', 2, 4, 2.5],
  ]);
  expect(Number(s.totalMs.toFixed(2))).toBe(29.11);
  expect(s.reasons).toEqual([
    ['task', 1],
    ['allocation failure', 1],
    ['finalize incremental marking via task', 1],
  ]);
  expect(s.unparsed).toEqual(['[1:0xb9c7000]     9000 ms: Weird-GC 1 MB']);
});

// Two scavenges and a mark-compact as Node 24's V8 prints them with --trace-gc-nvp (fields
// trimmed), and a line that is not one.
const NVP = `
[1:0x2aa67000]    13041 ms: pause=0.8 mutator=10.1 gc=s time_to_safepoint=0.00 scavenge=0.83 scavenge.roots=0.06 scavenge.parallel=0.23 scavenge.sweep_array_buffers=0.36 background.scavenge.parallel=0.23 start_object_size=26984648 promoted=129768 new_space_survived=143544 promotion_ratio=1.9% allocation_throughput=27127.0
[1:0x2aa67000]    13241 ms: pause=1.2 mutator=9.0 gc=s scavenge=1.1 scavenge.roots=0.04 scavenge.parallel=0.63 scavenge.sweep_array_buffers=0.40 promoted=70232
[1:0x2aa67000]    25130 ms: pause=8.0 mutator=7.8 gc=mc clear=4 clear.external_string_table=2.6 clear.weak_collections=1.1 evacuate=0.8 mark=1.2 finish=2.6 sweep.start_jobs=2.5 incremental=6.8 incremental_steps_count=6 background.mark=25.9 start_object_size=29587200 promoted=25944 compaction_speed=632780.5
{"level":"info","msg":"pause=1 but not a gc line"}
`;

it('sums --trace-gc-nvp collections by kind, with their promoted bytes and the pause by phase', () => {
  const [mc, s] = summarizeGcNvp(NVP);
  expect(mc).toMatchObject({ kind: 'Mark-Compact', count: 1, totalMs: 8, maxMs: 8, promotedBytes: 25944 });
  // Phases of the pause, largest first; sizes, counters, rates and background threads are not.
  expect(mc!.phases.slice(0, 4)).toEqual([
    ['clear', 4],
    ['clear.external_string_table', 2.6],
    ['finish', 2.6],
    ['sweep.start_jobs', 2.5],
  ]);
  expect(mc!.phases.map(([n]) => n)).not.toContain('incremental');
  expect(mc!.phases.map(([n]) => n)).not.toContain('background.mark');
  expect(s).toMatchObject({ kind: 'Scavenge', count: 2, maxMs: 1.2, promotedBytes: 200000 });
  expect(s!.totalMs).toBeCloseTo(2.0);
  expect(s!.phases[0]![0]).toBe('scavenge');
  expect(s!.phases[0]![1]).toBeCloseTo(0.965);
  expect(s!.phases.map(([n]) => n)).not.toContain('promotion_ratio');
});
