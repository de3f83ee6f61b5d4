// What an idle spell costs a gate. V8's memory reducer collects garbage once a process has gone
// quiet, and by default it runs that collection in its memory-footprint mode, which also drops
// the compiled code of functions that did not run meanwhile. On a gate that means its whole
// request path: the next requests after a quiet spell (a night, a tenant's gap, a bench phase on
// another route) run in V8's slower tiers while it re-optimizes. After 200 s idle (Node 24 starts
// the reducer from a 100 s watchdog), `--trace-opt` counted 584-803 optimizing compiles in the
// next 24 s at 100 req/s against 6-11 in a gate that kept serving, and the dlp profile's gate CPU
// per request and gate time p99 were 1.04 / 0.75 ms against 0.60 / 0.34 (README "Levers tried").
// Without the footprint mode the reducer's collection still frees the garbage; the gate keeps
// its code (91 compiles, 0.68 / 0.39 ms). Peak RSS is unchanged: an idle gate is below its peak.
// V8 reads the flag when the reducer starts a collection, so setting it at run time works (unlike
// --no-memory-reducer, read once when an isolate's heap is set up); NODE_OPTIONS does not take
// it. Set for `serve` only and process-wide, like tier-up.ts. One on node's command line wins.
import { setFlagsFromString } from 'node:v8';

export const IDLE_CODE_FLAG = '--no-memory-reducer-favors-memory';

/** Has V8's memory reducer collect an idle gate's garbage without dropping its compiled code,
 * unless node's command line (`execArgv`) says either way; says whether it did. */
export function keepCodeThroughIdle(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--(no[-_])?memory[-_]reducer[-_]favors[-_]memory(=|$)/.test(a))) return false;
  setFlagsFromString(IDLE_CODE_FLAG);
  return true;
}
