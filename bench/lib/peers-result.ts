// The shape of a peers result (bench/results/peers*.json): LM Gate's governed profile and Envoy AI
// Gateway's extproc with token metering, each behind the same Envoy, measured in the same
// slices as Envoy alone. bench/peers.ts writes it, the report and chart read it.
//
// Ratios are LM Gate / AI Gateway, computed from the rounded figures in the same row: below 1
// LM Gate is lower (for latency, CPU and memory: better), above 1 higher (for throughput:
// better). A ratio is null where either side is not above zero, e.g. an added latency that the
// noise made zero or negative: a ratio of two such numbers would mean nothing.
import { z } from 'zod';
import { environmentFields, runFields, streamingRow } from './result.ts';

const ms = z.number().finite();
const percentilesMs = z.object({ p50: ms, p90: ms, p99: ms, p99_9: ms, max: ms }).strict();
const errorCounts = z.record(z.string(), z.number().int().nonnegative());
const ratio = z.number().positive().finite().nullable();
const count = z.number().int().nonnegative();

/** The two governed routes, in report order. */
export const PEERS = ['governed', 'ai_gateway'] as const;
export type Peer = (typeof PEERS)[number];
export const PEER_LABEL: Record<Peer, string> = {
  governed: 'LM Gate (governed)',
  ai_gateway: 'AI Gateway (metering)',
};

const openLoopRoute = z
  .object({
    requests: z.number().int().positive(),
    errors: errorCounts,
    ms: percentilesMs,
    /** This route's percentile minus the direct route's, same slices. */
    addedMs: percentilesMs,
    /** CPU of the route's ext_proc server process over the slices, per request. */
    cpuMsPerRequest: z.number().nonnegative(),
  })
  .strict();

export const peersOpenLoopRow = z
  .object({
    rateRps: z.number().positive(),
    direct: z.object({ requests: z.number().int().positive(), errors: errorCounts, ms: percentilesMs }).strict(),
    governed: openLoopRoute,
    ai_gateway: openLoopRoute,
    ratio: z
      .object({
        addedP50: ratio,
        addedP90: ratio,
        addedP99: ratio,
        latencyP50: ratio,
        latencyP99: ratio,
        cpuMsPerRequest: ratio,
      })
      .strict(),
  })
  .strict();

const saturationRoute = z
  .object({
    rps: z.number().nonnegative(),
    p50Ms: ms,
    p99Ms: ms,
    errors: count,
    /** Null on the direct route: no ext_proc server. */
    cpuMsPerRequest: z.number().nonnegative().nullable(),
  })
  .strict();

export const peersSaturationRow = z
  .object({
    workers: z.number().int().positive(),
    direct: saturationRoute,
    governed: saturationRoute,
    ai_gateway: saturationRoute,
    ratio: z.object({ rps: ratio, p99: ratio, cpuMsPerRequest: ratio }).strict(),
  })
  .strict();

export const verificationRow = z
  .object({
    route: z.string(),
    request: z.enum(['json', 'stream']),
    status: z.number().int(),
    /** The usage the mock reported to the client. */
    usage: z.object({ input: count, output: count, total: count }).strict(),
    /** What the route's ext_proc server put in Envoy's dynamic metadata for the request, as an
     * access log on a verification listener printed it. */
    metadata: z.record(z.string(), z.unknown()),
    /** The metered token counts match the usage. */
    metered: z.boolean(),
  })
  .strict();

export const peersResult = z
  .object({
    schema: z.literal('lm-gate-bench-peers/1'),
    ...runFields,
    environment: z.object({ ...environmentFields, go: z.string() }).strict(),
    aiGateway: z
      .object({
        module: z.string(),
        version: z.string(),
        stamp: z.string(),
        commands: z.array(z.string()),
        /** Wall seconds of the build this run used (module download and compile). */
        buildS: z.number().nonnegative().nullable(),
        /** This run reused that build from .cache/. */
        cached: z.boolean(),
        filterConfig: z.record(z.string(), z.unknown()),
      })
      .strict(),
    routes: z.array(z.object({ route: z.string(), description: z.string() }).strict()).length(3),
    method: z.record(z.string(), z.union([z.string(), z.number(), z.array(z.number())])),
    verification: z.array(verificationRow).min(4),
    openLoop: z.array(peersOpenLoopRow).min(1),
    saturation: z.array(peersSaturationRow).min(1),
    streaming: z
      .object({
        chunks: z.number().int().positive(),
        chunkDelayMs: z.number().nonnegative(),
        routes: z.array(streamingRow).length(3),
        ratio: z.object({ ttftAddedP50: ratio, chunkTripAddedP50: ratio, cpuMsPerStream: ratio }).strict(),
      })
      .strict(),
    processes: z
      .array(
        z
          .object({
            route: z.enum(PEERS),
            process: z.string(),
            cpuS: z.number().nonnegative(),
            peakRssMiB: z.number().positive(),
            tokensMetered: count,
          })
          .strict(),
      )
      .length(2),
    processRatio: z.object({ cpuS: ratio, peakRssMiB: ratio }).strict(),
    /** Envoy's counters for each route's ext_proc filters (router level; AI Gateway's upstream
     * filter too) and GOAWAYs from its server. */
    envoyCounters: z.record(z.string(), z.record(z.string(), count)),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.kind === 'full' && r.openLoop.length < 3)
      ctx.addIssue({ code: 'custom', path: ['openLoop'], message: `${r.openLoop.length} rate(s) in a full run` });
    const routes = r.routes.map((x) => x.route).join(',');
    if (routes !== 'direct,governed,ai_gateway')
      ctx.addIssue({ code: 'custom', path: ['routes'], message: `routes ${routes}` });
    for (const p of PEERS)
      if (!r.verification.some((v) => v.route.startsWith(p) && v.metered))
        ctx.addIssue({ code: 'custom', path: ['verification'], message: `${p}: no request shown metered` });
  });

export type PeersResult = z.infer<typeof peersResult>;
export type PeersOpenLoopRow = z.infer<typeof peersOpenLoopRow>;
export type PeersSaturationRow = z.infer<typeof peersSaturationRow>;
export type VerificationRow = z.infer<typeof verificationRow>;

/** LM Gate / AI Gateway, or null when either is not above zero. Two decimals. */
export function peerRatio(lmGate: number | null, aiGateway: number | null): number | null {
  if (lmGate === null || aiGateway === null || !(lmGate > 0) || !(aiGateway > 0)) return null;
  const r = Math.round((lmGate / aiGateway) * 100) / 100;
  return r > 0 ? r : null;
}
