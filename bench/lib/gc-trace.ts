// V8's --trace-gc lines, summed by kind: where a gate's GC pauses come from (a scavenge per few
// MiB allocated is cheap; a mark-compact started by external memory, Buffers, is not).
//
//   [pid:0x..]  1234 ms: Scavenge 10.2 (12.3) -> 9.8 (12.3) MB, pooled: 0 MB, 0.85 / 0.00 ms  (average mu = 0.99, current mu = 0.98) allocation failure;
//   [pid:0x..]  5678 ms: Mark-Compact 20.1 (25.0) -> 18.2 (24.0) MB, pooled: 0 MB, 5.12 / 0.00 ms  (+ 3.1 ms in 25 steps since start of marking, ...) (average mu = ..., current mu = ...) finalize incremental marking via task; GC in old space requested

export interface GcKind {
  kind: string;
  count: number;
  totalMs: number;
  meanMs: number;
  maxMs: number;
}

export interface GcSummary {
  kinds: GcKind[];
  /** Pause time of every collection. */
  totalMs: number;
  /** Why collections started ("allocation failure", "external memory pressure", ...), most first. */
  reasons: [string, number][];
  /** Lines that looked like a collection but did not parse (a V8 whose format changed). */
  unparsed: string[];
}

const LINE =
  /ms: ([A-Za-z][A-Za-z -]*?) [\d.]+ \([\d.]+\) -> [\d.]+ \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;
/** Incremental marking's main-thread steps before a mark-compact: "(+ 16.2 ms in 176 steps ...
 * biggest step 5.1 ms". */
const STEPS = /\(\+ ([\d.]+) ms in \d+ steps since start of marking, biggest step ([\d.]+) ms/;

export function summarizeGcTrace(log: string): GcSummary {
  const kinds = new Map<string, GcKind>();
  const reasons = new Map<string, number>();
  let totalMs = 0;
  const unparsed: string[] = [];
  for (const line of log.split('\n')) {
    const m = LINE.exec(line);
    if (!m) {
      if (/ ms: [A-Z]/.test(line)) unparsed.push(line);
      continue;
    }
    const kind = m[1]!.trim();
    const ms = Number(m[2]);
    const k = kinds.get(kind) ?? { kind, count: 0, totalMs: 0, meanMs: 0, maxMs: 0 };
    k.count++;
    k.totalMs += ms;
    k.maxMs = Math.max(k.maxMs, ms);
    kinds.set(kind, k);
    totalMs += ms;
    const steps = STEPS.exec(line);
    if (steps) {
      const k2 = kinds.get('incremental marking steps') ?? {
        kind: 'incremental marking steps',
        count: 0,
        totalMs: 0,
        meanMs: 0,
        maxMs: 0,
      };
      k2.count++;
      k2.totalMs += Number(steps[1]);
      k2.maxMs = Math.max(k2.maxMs, Number(steps[2]));
      kinds.set(k2.kind, k2);
      totalMs += Number(steps[1]);
    }
    // The reason follows the last parenthesis: "... current mu = 0.98) allocation failure; ...".
    const reason = (line.slice(line.lastIndexOf(')') + 1).split(';')[0] ?? '').trim();
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  for (const k of kinds.values()) k.meanMs = k.totalMs / k.count;
  return {
    kinds: [...kinds.values()].sort((a, b) => b.totalMs - a.totalMs),
    totalMs,
    reasons: [...reasons].sort((a, b) => b[1] - a[1]),
    unparsed,
  };
}

// V8's --trace-gc-nvp lines: one per collection, name=value pairs, the pause broken down by
// phase. What --trace-gc cannot say: which phase of a mark-compact's pause grows (this is how the
// external strings of HTTP/2 header values showed up, README levers), and how many bytes each
// scavenge promoted (what fills the old generation and so sets how often mark-compacts come).
//
//   pause=6.0 mutator=10.5 gc=mc ... clear=3 clear.external_string_table=2.2 ... promoted=25944 ...

/** --trace-gc-nvp's gc= codes: scavenge, mark-compact, minor mark-sweep. */
const NVP_KINDS: Record<string, string> = {
  s: 'Scavenge',
  mc: 'Mark-Compact',
  mmc: 'Minor Mark-Sweep',
  ms: 'Mark-Sweep',
};
/** Fields that are not milliseconds of the pause (sizes, counters, rates, background threads). */
const NOT_PAUSE =
  /^(pause|mutator|gc|background\.|incremental|.*(size|throughput|speed|chunks|limit|ratio|rate|allocated|promoted|survived|nodes|capacity|count|steps).*)/;

export interface NvpKind {
  kind: string;
  count: number;
  totalMs: number;
  maxMs: number;
  /** Bytes promoted to the old generation, summed (scavenges and minor mark-sweeps). */
  promotedBytes: number;
  /** The pause's phases, ms per collection of this kind, largest first (sub-phases included,
   * named as V8 names them: `clear.external_string_table` is part of `clear`). */
  phases: [string, number][];
}

export function summarizeGcNvp(log: string): NvpKind[] {
  const kinds = new Map<
    string,
    { kind: string; count: number; totalMs: number; maxMs: number; promotedBytes: number; phases: Map<string, number> }
  >();
  for (const line of log.split('\n')) {
    const at = line.indexOf('pause=');
    if (at < 0 || !line.includes(' gc=')) continue;
    const fields = new Map<string, string>();
    for (const pair of line.slice(at).split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const code = fields.get('gc') ?? '';
    const kind = NVP_KINDS[code] ?? code;
    const k = kinds.get(kind) ?? { kind, count: 0, totalMs: 0, maxMs: 0, promotedBytes: 0, phases: new Map() };
    const pause = Number(fields.get('pause'));
    k.count++;
    k.totalMs += pause;
    k.maxMs = Math.max(k.maxMs, pause);
    k.promotedBytes += Number(fields.get('promoted') ?? 0);
    for (const [name, value] of fields) {
      if (NOT_PAUSE.test(name)) continue;
      const ms = Number(value);
      if (Number.isFinite(ms) && ms > 0) k.phases.set(name, (k.phases.get(name) ?? 0) + ms);
    }
    kinds.set(kind, k);
  }
  return [...kinds.values()]
    .map((k) => ({
      kind: k.kind,
      count: k.count,
      totalMs: k.totalMs,
      maxMs: k.maxMs,
      promotedBytes: k.promotedBytes,
      phases: [...k.phases].map(([n, t]): [string, number] => [n, t / k.count]).sort((a, b) => b[1] - a[1]),
    }))
    .sort((a, b) => b.totalMs - a.totalMs);
}
