import { expect, it } from 'vitest';
import { summarizeGcTrace } from './gc-trace.ts';

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
