// The shape of a bench result (bench/results/*.json). The runner writes it, the report and
// chart read it, and `npm run bench:smoke` checks a fresh result against it: CI asserts the
// harness produced a well-formed result, never a latency threshold.
import { z } from 'zod';

const ms = z.number().finite();
const percentilesMs = z.object({ p50: ms, p90: ms, p99: ms, p99_9: ms, max: ms }).strict();
const errorCounts = z.record(z.string(), z.number().int().nonnegative());

export const openLoopRow = z
  .object({
    profile: z.string(),
    rateRps: z.number().positive(),
    requests: z.object({ direct: z.number().int().positive(), gated: z.number().int().positive() }),
    errors: z.object({ direct: errorCounts, gated: errorCounts }),
    directMs: percentilesMs,
    gatedMs: percentilesMs,
    addedMs: percentilesMs,
    gateCpuS: z.number().nonnegative(),
    gateCpuMsPerRequest: z.number().nonnegative(),
  })
  .strict();

export const saturationRow = z
  .object({
    route: z.string(),
    workers: z.number().int().positive(),
    rps: z.number().nonnegative(),
    p50Ms: ms,
    p99Ms: ms,
    errors: z.number().int().nonnegative(),
  })
  .strict();

export const streamingRow = z
  .object({
    route: z.string(),
    description: z.string(),
    requests: z.number().int().positive(),
    errors: errorCounts,
    ttftMs: percentilesMs,
    ttftAddedMs: percentilesMs.nullable(),
    /** Each chunk's trip from the mock's write to the client's read, pooled over chunks. */
    chunkTripMs: z.object({ p50: ms, p99: ms }).strict(),
    /** The same minus the direct route's: what the route adds to every chunk. */
    chunkTripAddedMs: z.object({ p50: ms, p99: ms }).strict().nullable(),
    /** Gaps between consecutive content events, pooled over requests. */
    gapMs: z.object({ p50: ms, p99: ms }).strict(),
    totalMs: percentilesMs,
    gateCpuMsPerRequest: z.number().nonnegative().nullable(),
  })
  .strict();

/** What every bench result opens with: which run, and on what (bench:peers adds go). */
export const runFields = {
  kind: z.enum(['full', 'smoke']),
  startedAt: z.string(),
  durationS: z.number().positive(),
  command: z.string().min(1),
  commit: z.string(),
};
export const environmentFields = {
  cpuModel: z.string(),
  cores: z.number().int().positive(),
  memoryGiB: z.number().positive(),
  kernel: z.string(),
  node: z.string(),
  envoy: z.string(),
  vegeta: z.string(),
  envoyConcurrency: z.number().int().positive(),
};
export type RunEnvironment = { [K in keyof typeof environmentFields]: z.infer<(typeof environmentFields)[K]> };

export const benchResult = z
  .object({
    schema: z.literal('lm-gate-bench/1'),
    ...runFields,
    environment: z.object(environmentFields).strict(),
    method: z.record(z.string(), z.union([z.string(), z.number(), z.array(z.number())])),
    openLoop: z.array(openLoopRow).min(1),
    saturation: z.array(saturationRow).min(1),
    saturationMaxRps: z.record(z.string(), z.number().nonnegative()),
    streaming: z
      .object({
        chunks: z.number().int().positive(),
        chunkDelayMs: z.number().nonnegative(),
        routes: z.array(streamingRow).min(2),
        /** What reading the response STREAMED (one gRPC round trip per chunk) adds to each chunk. */
        perChunkOverheadMs: z.object({ p50: ms, p99: ms }).strict().nullable(),
      })
      .strict(),
    gates: z
      .array(
        z
          .object({
            name: z.string(),
            profile: z.string(),
            cpuS: z.number().nonnegative(),
            peakRssMiB: z.number().positive(),
            tokensMetered: z.number().int().nonnegative(),
          })
          .strict(),
      )
      .min(2),
    /** The governed_jwt gate's JWKS fetches by reason (startup, refresh, unknown_kid): during the
     * measured run and in all, and the requests the bench issuer served. */
    jwks: z
      .object({
        fetchesDuringRun: z.record(z.string(), z.number().int().nonnegative()),
        fetchesTotal: z.record(z.string(), z.number().int().nonnegative()),
        served: z.number().int().nonnegative(),
      })
      .strict()
      .optional(),
    /** Envoy's ext_proc counters per gated route, and GOAWAYs from each gate. */
    envoyCounters: z.record(z.string(), z.record(z.string(), z.number().int().nonnegative())),
    skipped: z.array(z.object({ profile: z.string(), reason: z.string() }).strict()),
    cpuProfile: z
      .object({
        route: z.string(),
        rateRps: z.number().positive(),
        durationS: z.number().positive(),
        sampledMs: z.number().nonnegative(),
        byPackage: z.array(z.object({ name: z.string(), selfPct: z.number() }).strict()),
        topFunctions: z.array(
          z.object({ name: z.string(), location: z.string(), selfPct: z.number(), calledFrom: z.string() }).strict(),
        ),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const profiles = new Set(r.openLoop.map((o) => o.profile));
    for (const p of profiles) {
      const rates = r.openLoop.filter((o) => o.profile === p).length;
      if (rates < (r.kind === 'full' ? 3 : 1))
        ctx.addIssue({ code: 'custom', path: ['openLoop'], message: `profile ${p} has ${rates} rate(s)` });
    }
  });

export type BenchResult = z.infer<typeof benchResult>;
export type OpenLoopRow = z.infer<typeof openLoopRow>;
export type SaturationRow = z.infer<typeof saturationRow>;
export type StreamingRow = z.infer<typeof streamingRow>;
