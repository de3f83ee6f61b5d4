// The x-ratelimit-* headers OpenAI sends, which its SDKs and many clients read to pace
// themselves: limit, remaining and reset for requests and for tokens. reset is a duration in
// Go's format as OpenAI writes it ("1s", "6m0s", "59ms").

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

export type RateUnit = 'requests' | 'tokens' | 'bytes';

/** The trio's names per unit, built once. */
const NAMES: Readonly<Record<RateUnit, readonly [string, string, string]>> = {
  requests: ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests'],
  tokens: ['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens'],
  bytes: ['x-ratelimit-limit-bytes', 'x-ratelimit-remaining-bytes', 'x-ratelimit-reset-bytes'],
};

/** Appends the trio for `what` from the tightest counter's view (its limit, what remains, ms
 * until it is full again). OpenAI sends requests and tokens; bytes (request body bytes) is LM
 * Gate's own, named alike. */
export function pushRateHeaders(
  out: HeaderList,
  what: RateUnit,
  limit: number,
  remaining: number,
  resetMs: number,
): void {
  const n = NAMES[what];
  out.push([n[0], String(limit)], [n[1], String(remaining)], [n[2], openAiDuration(resetMs)]);
}
