// The gate's own time per request, from its audit log (latency_ms.gate: the handlers' time,
// the sum of its ext_proc phases). Beside the added latency a client sees, it says whether a
// tail is spent inside the gate or around it (Envoy, the transport, the machine's scheduling).

/** Gate milliseconds of each request record in `text` (audit log lines; checkpoints skipped;
 * a last line without its newline is still being written, and left out). */
export function gateMillis(text: string): number[] {
  const out: number[] = [];
  const lines = text.split('\n');
  lines.pop();
  for (const line of lines) {
    if (!line.includes('"type":"request"')) continue;
    const r = JSON.parse(line) as { type?: string; latency_ms?: { gate?: number } };
    if (r.type === 'request' && typeof r.latency_ms?.gate === 'number') out.push(r.latency_ms.gate);
  }
  return out;
}

/** The p-th percentile (nearest rank) of `xs`, NaN when empty. */
export function nearestRank(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
