// An optional prompt-injection classifier running beside the gate (a sidecar or a service) over
// HTTP: the gate POSTs {"input": text} and reads {"score": 0..1} (the probability the text is an
// injection). A model is better at paraphrases than the heuristics, and slower, so it has a
// timeout, and what happens when it errs or is late is configured, never implied: `block` (fail
// closed, the default) or `allow`, and the result says which happened for the audit.
export interface ClassifierOptions {
  url: string;
  timeoutMs: number;
  /** Longest text sent; a longer text is sent cut to this many characters from its start and its
   * end (instructions hide at either end), and the result says so. */
  maxChars: number;
  headers?: Readonly<Record<string, string>>;
}

export type ClassifierResult =
  | { ok: true; score: number; truncated: boolean; ms: number }
  | {
      ok: false;
      error: 'timeout' | 'unreachable' | 'bad_status' | 'bad_answer' | 'aborted';
      detail: string;
      ms: number;
    };

function clip(text: string, max: number): { input: string; truncated: boolean } {
  if (text.length <= max) return { input: text, truncated: false };
  const half = Math.floor(max / 2);
  return { input: `${text.slice(0, half)}\n…\n${text.slice(text.length - (max - half))}`, truncated: true };
}

/** Asks the classifier. Never throws: every failure is a result the caller maps to its
 * configured behaviour. `signal` is the request's (Envoy cancelling, the message deadline). */
export async function classify(opts: ClassifierOptions, text: string, signal?: AbortSignal): Promise<ClassifierResult> {
  const t0 = performance.now();
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  const { input, truncated } = clip(text, opts.maxChars);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signals = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const res = await fetch(opts.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...opts.headers },
      body: JSON.stringify({ input }),
      signal: signals,
    });
    if (!res.ok) {
      await res.body?.cancel();
      return { ok: false, error: 'bad_status', detail: `HTTP ${res.status}`, ms: ms() };
    }
    // A misbehaving sidecar must not make the gate buffer without bound.
    const body = await res.text();
    if (body.length > 64 * 1024) return { ok: false, error: 'bad_answer', detail: 'answer over 64 KiB', ms: ms() };
    let score: unknown;
    try {
      score = (JSON.parse(body) as { score?: unknown }).score;
    } catch {
      return { ok: false, error: 'bad_answer', detail: 'not JSON', ms: ms() };
    }
    if (typeof score !== 'number' || !(score >= 0 && score <= 1))
      return { ok: false, error: 'bad_answer', detail: 'no score between 0 and 1', ms: ms() };
    return { ok: true, score, truncated, ms: ms() };
  } catch (err) {
    if (timeout.aborted)
      return { ok: false, error: 'timeout', detail: `no answer within ${opts.timeoutMs} ms`, ms: ms() };
    if (signal?.aborted) return { ok: false, error: 'aborted', detail: 'the request ended first', ms: ms() };
    return {
      ok: false,
      error: 'unreachable',
      detail: (err as Error).cause ? String((err as Error).cause) : String(err),
      ms: ms(),
    };
  }
}
