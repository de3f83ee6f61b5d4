// Where a request's tokens are counted when upstream reported none: inline when the texts are
// small and this thread already has the encoding, else on a parse worker thread (the encodings
// then load there, never in the gate's event-loop thread). Measured with npm run bench:tokenizer
// (bench/results/tokenizer.md, o200k_base): ~0.04-0.1 ms per KiB of unseen JSON, code or prose,
// ~0.4-0.55 of CJK or base64, and ~0.1 s and ~60 MiB to load the encoding; a worker round trip
// costs ~0.1-0.25 ms, so up to 2 KiB counting inline is cheaper.
import type { ParsePool } from '../llm/parse-pool.ts';
import { type CountJob, countJob, type TokenCount } from './count.ts';
import { isLoaded } from './tokenizer.ts';

export const INLINE_COUNT_MAX_BYTES = 2 * 1024;

function size(job: CountJob): number {
  let n = (job.request?.byteLength ?? 0) + (job.responseJson?.byteLength ?? 0);
  if (job.responseTexts !== undefined) for (const t of job.responseTexts) n += t.length;
  return n;
}

/** Count inline (a plain result, no promise) or on the pool. Without a pool (server.parseWorkers
 * 0) everything is counted inline, as every body is then parsed inline. */
export function countTokens(pool: ParsePool | undefined, job: CountJob): TokenCount | Promise<TokenCount> {
  if (pool === undefined || (isLoaded(job.encoding) && size(job) <= INLINE_COUNT_MAX_BYTES)) return countJob(job);
  // Copies: the pool transfers the buffers, and the originals may be views into larger ones.
  return pool.count({
    ...job,
    request: job.request === undefined ? undefined : new Uint8Array(job.request),
    responseJson: job.responseJson === undefined ? undefined : new Uint8Array(job.responseJson),
  });
}
