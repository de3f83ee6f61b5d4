// The configuration schema: the single source of truth for what LM Gate accepts, its defaults
// and what each field means. README's config reference is checked against it
// (extproc/config/reference.test.ts), so a field documented here is a field that exists.
import { z } from 'zod';
import { DEFAULT_MAX_JSON_DEPTH } from '../llm/shapes.ts';
import { ALWAYS_STAGE_NAMES, STAGE_NAMES, stageGraphProblems } from '../pipeline/stages.ts';
import { hostPort } from './host-port.ts';

/** Patterns with `*` wildcards, for models and endpoints: "*", "gpt-*", "llama-3.1-*-instruct". */
const patterns = z.array(z.string().min(1)).min(1);

export const endpointNames = [
  'openai.chat',
  'openai.completions',
  'openai.embeddings',
  'openai.models',
  'ollama.chat',
  'ollama.generate',
  'ollama.embed',
  'ollama.tags',
] as const;

const apiKey = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'key ids are 1-64 characters of A-Z a-z 0-9 . _ -')
      .describe('Stable identifier of the key; appears in audit records and metrics, never the key itself.'),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'expected the lowercase hex SHA-256 of the key (lm-gate keys create prints it)')
      .describe('SHA-256 of the key. The key itself is never stored in the config.'),
    tenant: z.string().min(1).describe('Tenant the caller belongs to.'),
    team: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    roles: z.array(z.string().min(1)).default([]),
    models: patterns.default(['*']).describe('Models this key may request (wildcards allowed).'),
    endpoints: z
      .array(z.union([z.enum(endpointNames), z.literal('*')]))
      .min(1)
      .default(['*'])
      .describe(`API endpoints this key may call: * or any of ${endpointNames.join(', ')}.`),
    disabled: z.boolean().default(false).describe('A disabled key is refused with 401, as if unknown.'),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        grpcAddress: hostPort.default('127.0.0.1:50051').describe('TCP address of the ext_proc gRPC server.'),
        unixSocket: z
          .string()
          .min(1)
          .optional()
          .describe('Also listen on this Unix socket path (Envoy: pipe address), for a sidecar without TCP.'),
        adminAddress: hostPort.default('127.0.0.1:9901').describe('HTTP address for /metrics, /healthz and /readyz.'),
        drainTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(15_000)
          .describe('On SIGTERM, how long in-flight streams may take to finish before they are cut.'),
        messageDeadlineMs: z
          .number()
          .int()
          .positive()
          .default(150)
          .describe(
            "Longest the gate works on one ext_proc message before answering 503 itself. Keep it under Envoy's message_timeout (200 ms by default) so the client gets our error, not Envoy's.",
          ),
        maxMessageDeadlineMs: z
          .number()
          .int()
          .positive()
          .default(1500)
          .describe(
            "Longest a slow path may take on one message (a large request body parsed off the event loop). The gate first asks Envoy to wait this long with override_message_timeout; keep it under the filter's max_message_timeout (2 s shipped), above which Envoy ignores the request and keeps message_timeout.",
          ),
        settleTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(2000)
          .describe(
            "When a request ends while a stage is still working on it (the message deadline answered 503, or Envoy cancelled the stream), how long the gate waits for that stage to settle, and then for the stages' end hooks (refunds, releases), before it writes the audit record without them. Each wait is bounded by this.",
          ),
        maxRequestBodyBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024)
          .describe(
            'Request bodies larger than this are refused with 413, at request headers when content-length already says so.',
          ),
        maxJsonDepth: z
          .number()
          .int()
          .min(2)
          .max(1000)
          .default(DEFAULT_MAX_JSON_DEPTH)
          .describe(
            'Deepest nesting of arrays and objects accepted in a request body (the top-level object is depth 1); deeper bodies are refused with 400 json_too_deep. Bounds the work and the recursion every parser down the line does.',
          ),
        parseWorkers: z
          .number()
          .int()
          .min(0)
          .max(16)
          .optional()
          .describe(
            'Worker threads that parse request bodies too large to parse on the event loop without stalling other requests. Default: one less than the cores, at least 1, at most 4. 0 parses every body on the event loop.',
          ),
        maxBufferedResponseBytes: z
          .number()
          .int()
          .positive()
          .default(1024 * 1024)
          .describe(
            "JSON responses whose content-length is at most this are read BUFFERED (one message); larger ones, or ones without a content-length, are read STREAMED with an incremental reader, so Envoy never buffers an unbounded body. A BUFFERED body is scanned for usage in one go on the event loop, about 1 ms per MiB: the default keeps that near 1 ms. Keep it under Envoy's per_connection_buffer_limit_bytes (8 MiB shipped).",
          ),
      })
      .strict()
      .default({
        grpcAddress: '127.0.0.1:50051',
        adminAddress: '127.0.0.1:9901',
        drainTimeoutMs: 15_000,
        messageDeadlineMs: 150,
        maxMessageDeadlineMs: 1500,
        settleTimeoutMs: 2000,
        maxRequestBodyBytes: 4 * 1024 * 1024,
        maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
        maxBufferedResponseBytes: 1024 * 1024,
      }),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    pipeline: z
      .object({
        stages: z
          .array(z.enum(STAGE_NAMES))
          .default([...STAGE_NAMES])
          .describe(
            `Optional stages to run; they always run in their fixed order (${STAGE_NAMES.join(', ')}), after ${ALWAYS_STAGE_NAMES.join(', ')}, which always runs. [] runs none: a pass-through gate that still audits every request and meters nothing. Leaving out identity.api_key lets unauthenticated requests through. A stage that needs a fact (principal, parsed) another provides is refused without it.`,
          ),
      })
      .strict()
      .default({ stages: [...STAGE_NAMES] }),
    identity: z
      .object({
        apiKeys: z.array(apiKey).default([]).describe('API keys, stored as SHA-256 hashes.'),
      })
      .strict()
      .default({ apiKeys: [] }),
    policy: z
      .object({
        unknownEndpoints: z
          .enum(['reject', 'allow'])
          .default('reject')
          .describe(
            'Paths that are not a known LLM API (OpenAI, Ollama): reject with 404, or allow for authenticated callers whose key has endpoints ["*"].',
          ),
      })
      .strict()
      .default({ unknownEndpoints: 'reject' }),
    metering: z
      .object({
        injectStreamUsage: z
          .boolean()
          .default(true)
          .describe(
            'Add stream_options.include_usage to streamed OpenAI requests so upstream reports usage; the usage event is removed from what a client that did not ask for it receives.',
          ),
      })
      .strict()
      .default({ injectStreamUsage: true }),
    audit: z
      .object({
        path: z
          .string()
          .min(1)
          .default('audit.log')
          .describe('File the audit JSON lines are appended to; "-" for stdout.'),
        maxPendingBytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024 * 1024)
          .describe(
            'Audit bytes waiting to be written above which new requests are refused with 503 (fail closed) until the sink catches up. Records of requests already admitted are always kept.',
          ),
      })
      .strict()
      .default({ path: 'audit.log', maxPendingBytes: 16 * 1024 * 1024 }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.server.maxMessageDeadlineMs < cfg.server.messageDeadlineMs)
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'maxMessageDeadlineMs'],
        message: 'must be at least server.messageDeadlineMs',
      });
    const stages = new Set<string>();
    for (const s of cfg.pipeline.stages) {
      if (stages.has(s))
        ctx.addIssue({ code: 'custom', path: ['pipeline', 'stages'], message: `stage "${s}" listed twice` });
      stages.add(s);
    }
    for (const message of stageGraphProblems(stages))
      ctx.addIssue({ code: 'custom', path: ['pipeline', 'stages'], message });
    const ids = new Set<string>();
    const hashes = new Set<string>();
    cfg.identity.apiKeys.forEach((k, i) => {
      if (ids.has(k.id))
        ctx.addIssue({ code: 'custom', path: ['identity', 'apiKeys', i, 'id'], message: `duplicate key id "${k.id}"` });
      if (hashes.has(k.sha256))
        ctx.addIssue({ code: 'custom', path: ['identity', 'apiKeys', i, 'sha256'], message: 'duplicate key hash' });
      ids.add(k.id);
      hashes.add(k.sha256);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type ApiKeyConfig = Config['identity']['apiKeys'][number];
