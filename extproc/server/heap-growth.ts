// How far V8 lets the old generation grow past what the last full collection kept alive. Left to
// itself, V8 picks a factor of up to 4 when the program allocates fast, which is what a busy gate
// does: the governed gate's old space reached 75-80 MiB under load for ~30 MiB alive, and garbage
// Buffers (Envoy's frames) held their malloc'd memory until a full collection too. At 100% (a
// factor of 2) its peak RSS under `npm run bench:rss` fell 246 -> 173 MiB for +1% of CPU per
// request in collections; 50% and 20% went lower (157, ~150 MiB) but cost 5% and 20% (README
// "In production" has the figures).
// NODE_OPTIONS does not take this V8 flag, so the gate sets it itself, for `serve` only (the
// CLI's one-shot commands keep V8's default), and process-wide: gate workers and parse workers
// are isolates of the same process. A --heap-growing-percent on node's command line wins.
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 100;

/** Sets V8's heap growing factor to HEAP_GROWING_PERCENT unless node's command line (`execArgv`)
 * sets one; says whether it did. */
export function boundHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
