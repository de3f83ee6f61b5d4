// The x-ratelimit-* headers OpenAI sends, which its SDKs and many clients read to pace
// themselves: limit, remaining and reset for requests and for tokens. reset is a duration in
// Go's format as OpenAI writes it ("1s", "6m0s", "59ms").
import type { CounterView } from './counters.ts';

/** ms as OpenAI's reset duration: "250ms" under a second, else h/m/s ("1s", "6m0s", "1h0m12s",
 * "1.5s"), milliseconds rounded. */
export function openAiDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = (total % 60_000) / 1000;
  const sec = `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, '')}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}

/** retry-after in whole seconds, at least 1 (RFC 9110: delay-seconds). */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

export type HeaderList = [string, string][];

/** Appends the trio for `what` from the tightest counter's view. OpenAI sends requests and
 * tokens; bytes (request body bytes) is LM Gate's own, named alike. */
export function pushRateHeaders(out: HeaderList, what: 'requests' | 'tokens' | 'bytes', v: CounterView): void {
  out.push(
    [`x-ratelimit-limit-${what}`, String(v.limit)],
    [`x-ratelimit-remaining-${what}`, String(v.remaining)],
    [`x-ratelimit-reset-${what}`, openAiDuration(v.resetMs)],
  );
}
