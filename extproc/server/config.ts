// The `server` config section: where the gate listens and the limits it holds every ext_proc
// stream to. Each default is stated once, on its field; `.prefault({})` fills an absent section
// by parsing an empty one, so the section can never disagree with its fields.
import { z } from 'zod';
import { hostPort } from '../config/host-port.ts';
import { DEFAULT_MAX_JSON_DEPTH } from '../llm/shapes.ts';

export const serverConfig = z
  .object({
    grpcAddress: hostPort
      .default('127.0.0.1:50051')
      .describe(
        'TCP address (host:port) of the ext_proc gRPC server Envoy connects to. Keep it reachable only by Envoy: loopback or a mesh-internal address. Port 0 picks a free port. Takes effect at the next restart.',
      ),
    unixSocket: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Also listen on this Unix socket path (an Envoy pipe address), for a sidecar that should not open a TCP port. Unset: TCP only. Takes effect at the next restart.',
      )
      .meta({ examples: ['/run/lm-gate/ext-proc.sock'] }),
    adminAddress: hostPort
      .default('127.0.0.1:9901')
      .describe(
        'HTTP address (host:port) serving /metrics, /healthz and /readyz for Prometheus and the orchestrator. Takes effect at the next restart.',
      ),
    drainTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(15_000)
      .describe(
        'Milliseconds in-flight streams may take to finish after SIGTERM before they are cut. Keep it under the orchestrator grace period so the audit is flushed before a SIGKILL.',
      ),
    messageDeadlineMs: z
      .number()
      .int()
      .positive()
      .default(150)
      .describe(
        "Milliseconds the gate works on one ext_proc message before answering 503 itself. Keep it under Envoy's message_timeout (200 ms by default) so the client gets our error, not Envoy's.",
      ),
    maxMessageDeadlineMs: z
      .number()
      .int()
      .positive()
      .default(1500)
      .describe(
        "Milliseconds a slow path may take on one message (a large request body parsed off the event loop); must be at least messageDeadlineMs. The gate first asks Envoy to wait this long with override_message_timeout; keep it under the filter's max_message_timeout (2 s shipped), above which Envoy ignores the request and keeps message_timeout.",
      ),
    settleTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(2000)
      .describe(
        "Milliseconds the gate waits, when a request ends while a stage is still working on it (the message deadline answered 503, or Envoy cancelled the stream), for that stage to settle, and then for the stages' end hooks (refunds, releases), before it writes the audit record without them. Each wait is bounded by this.",
      ),
    maxRequestBodyBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024)
      .describe(
        'Request bodies larger than this many bytes are refused with 413, already at the request headers when content-length says so. Raising it raises the memory one request may hold.',
      ),
    maxJsonDepth: z
      .number()
      .int()
      .min(2)
      .max(1000)
      .default(DEFAULT_MAX_JSON_DEPTH)
      .describe(
        'Deepest nesting of arrays and objects accepted in a request body (the top-level object is depth 1), from 2 to 1000; deeper bodies are refused with 400 json_too_deep. Bounds the work and the recursion every parser down the line does.',
      ),
    workers: z
      .union([z.number().int().min(1).max(64), z.literal('auto')])
      .default(1)
      .describe(
        "Gate workers: threads of one process, each serving ext_proc on its own port (grpcAddress's port plus its index, 0 to workers-1) and its own Unix socket (unixSocket with -<index> before the extension), so the gate uses that many cores. Give Envoy's ext_proc cluster one endpoint per worker with lb_policy LEAST_REQUEST: Envoy then spreads streams across them. The audit file, /metrics and the admin port stay one per process. 1: the gate runs on the main thread and listens on grpcAddress itself. auto: one per core. Takes effect at the next restart.",
      )
      .meta({ examples: [2, 'auto'] }),
    parseWorkers: z
      .number()
      .int()
      .min(0)
      .max(16)
      .optional()
      .describe(
        'Worker threads (0 to 16) that parse request bodies too large to parse on the event loop without stalling other requests; with several gate workers, each has this many. Unset: one less than the cores, at least 1, at most 4, and 1 per gate worker when there are several. 0 parses every body on the event loop. Takes effect at the next restart.',
      )
      .meta({ examples: [2] }),
    maxBufferedResponseBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024)
      .describe(
        "JSON responses whose content-length is at most this many bytes are read BUFFERED (one message); larger ones, or ones without a content-length, are read STREAMED with an incremental reader, so Envoy never buffers an unbounded body. A BUFFERED body is scanned for usage in one go on the event loop, about 1 ms per MiB: the default keeps that near 1 ms. Keep it under Envoy's per_connection_buffer_limit_bytes (8 MiB shipped).",
      ),
  })
  .strict()
  .superRefine((server, ctx) => {
    const port = Number(server.grpcAddress.slice(server.grpcAddress.lastIndexOf(':') + 1));
    if (typeof server.workers === 'number' && port !== 0 && port + server.workers - 1 > 65535)
      ctx.addIssue({
        code: 'custom',
        path: ['workers'],
        message: `worker ports run from grpcAddress's port ${port} to ${port + server.workers - 1}, past 65535: choose a lower port or fewer workers`,
      });
    if (server.maxMessageDeadlineMs < server.messageDeadlineMs)
      ctx.addIssue({
        code: 'custom',
        path: ['maxMessageDeadlineMs'],
        message: 'must be at least server.messageDeadlineMs',
      });
  })
  .prefault({})
  .describe('Where the gate listens, and the limits it holds every request and response to.');
