// One bounded GET of a JSON document from an IdP (discovery, JWKS). Every fetch has a timeout,
// a size cap read as the bytes arrive (a content-length is not trusted), and refuses redirects:
// a key URL that redirects could hand the gate keys from anywhere the redirect points.

export interface FetchedJson {
  readonly json: unknown;
  /** Cache-Control max-age in seconds, when the response set one (and no no-store/no-cache). */
  readonly maxAgeSeconds: number | undefined;
}

export interface FetchJsonOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

/** Injectable, so the key cache is unit-tested with a fake IdP. Rejects with an Error whose
 * message says what failed (never a response body). */
export type FetchJson = (url: string, opts: FetchJsonOptions) => Promise<FetchedJson>;

export const fetchJson: FetchJson = async (url, { timeoutMs, maxBytes }) => {
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'error', signal, headers: { accept: 'application/json' } });
  } catch (err) {
    throw new Error(signal.aborted ? `timed out after ${timeoutMs} ms` : `request failed: ${causeOf(err)}`);
  }
  try {
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (declared > maxBytes) throw new Error(`response of ${declared} bytes is over ${maxBytes}`);
    const body = await readCapped(res, maxBytes, signal, timeoutMs);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new Error('response is not JSON');
    }
    return { json, maxAgeSeconds: maxAge(res.headers.get('cache-control')) };
  } finally {
    // Whatever was not read is dropped, so the connection does not hold it.
    if (!res.bodyUsed) await res.body?.cancel().catch(() => {});
  }
};

async function readCapped(res: Response, maxBytes: number, signal: AbortSignal, timeoutMs: number): Promise<Buffer> {
  const reader = res.body?.getReader();
  if (reader === undefined) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new Error(`response is over ${maxBytes} bytes`);
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    if (signal.aborted) throw new Error(`timed out after ${timeoutMs} ms`);
    throw err;
  }
  return Buffer.concat(chunks);
}

/** max-age of a Cache-Control value; undefined when absent or when caching is forbidden
 * (no-store, no-cache: the refresh interval then applies, bounded below). */
export function maxAge(cacheControl: string | null): number | undefined {
  if (cacheControl === null) return undefined;
  let age: number | undefined;
  for (const part of cacheControl.split(',')) {
    const d = part.trim().toLowerCase();
    if (d === 'no-store' || d === 'no-cache') return undefined;
    const m = /^max-age=(\d{1,10})$/.exec(d);
    if (m) age = Number(m[1]);
  }
  return age;
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
