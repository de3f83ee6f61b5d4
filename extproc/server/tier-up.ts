// How soon V8 optimizes the gate's code with TurboFan. V8 waits for 3000 calls of a function
// (--invocation-count-for-turbofan), so a function the gate runs once per request, such as
// its stages' request hooks or the audit record's builder, stays in the slower tiers for the
// first 3000 requests: 30 s at 100 req/s, five minutes at 10. A gate that has just started
// (a deploy, a scale-up, a restart) ran 6-16% more CPU per request and a higher tail for that
// long (README "Levers tried"). At 1000 calls the same code is optimized three times sooner;
// what it is optimized with is the same request path's type feedback, which is stable here.
// NODE_OPTIONS does not take this V8 flag, so the gate sets it itself, for `serve` only, and
// process-wide before any worker starts. One on node's command line wins.
import { setFlagsFromString } from 'node:v8';

export const TURBOFAN_INVOCATIONS = 1000;

/** Sets V8's TurboFan threshold to TURBOFAN_INVOCATIONS unless node's command line
 * (`execArgv`) sets one; says whether it did. */
export function speedUpTierUp(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--invocation[-_]count[-_]for[-_]turbofan(=|$)/.test(a))) return false;
  setFlagsFromString(`--invocation-count-for-turbofan=${TURBOFAN_INVOCATIONS}`);
  return true;
}
