// The `audit` config section: where the one JSON line per request goes, how durable each line is
// before the gate moves on, how the files rotate and how the hash chain is checkpointed and
// signed. All of it is read when the sink opens, at start.
import { z } from 'zod';
import { captureConfig } from './capture-config.ts';

export const DURABILITY = ['none', 'interval', 'strict'] as const;
export type Durability = (typeof DURABILITY)[number];

export const auditConfig = z
  .object({
    path: z
      .string()
      .min(1)
      .default('audit.log')
      .describe(
        'The active audit file, relative to the working directory: JSON lines are appended here, and rotated files are renamed beside it (PATH.<first seq>-<UTC time>). "-" writes them to stdout instead (no rotation, and no chain resumed across restarts). Takes effect at the next restart.',
      ),
    maxPendingBytes: z
      .number()
      .int()
      .positive()
      .default(16 * 1024 * 1024)
      .describe(
        'Audit bytes waiting to be written above which new requests are refused with 503 (fail closed) until the sink catches up; records of requests already admitted are always kept. Bounds the memory a slow or failing disk can take. Takes effect at the next restart.',
      ),
    maxRefusalBytes: z
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024)
      .describe(
        'While the sink cannot write (a full or failing disk, or over maxPendingBytes), the records of the requests it refuses (503 audit_unavailable) are kept one by one up to this many bytes; past it each further refusal is counted instead, and the count (per tenant, route, API, status and code, with the first and last time and request id) is written as one chained refusal_summary line when the sink writes again. Bounds the memory an outage at a high request rate can take; records of admitted requests are never counted instead. Takes effect at the next restart.',
      ),
    durability: z
      .enum(DURABILITY)
      .default('interval')
      .describe(
        'When a record is on disk. none: written to the OS, never fsynced (a power loss loses what the kernel had not written, typically up to 30 s). interval: fsync every fsyncIntervalMs (loses at most that much). strict: the gate answers a request only after its record is fsynced; records written meanwhile share one fsync (group commit); nothing the client saw answered is lost. Takes effect at the next restart.',
      ),
    fsyncIntervalMs: z
      .number()
      .int()
      .positive()
      .default(1000)
      .describe(
        'With durability interval: the longest a written record waits for its fsync. Takes effect at the next restart.',
      ),
    rotateBytes: z
      .number()
      .int()
      .min(4096)
      .default(256 * 1024 * 1024)
      .describe(
        'The active file is rotated (renamed, a new one started) before it would grow past this size. Takes effect at the next restart.',
      ),
    rotateMs: z
      .number()
      .int()
      .min(1000)
      .default(24 * 60 * 60 * 1000)
      .describe(
        'The active file is rotated once it is this old (also when no request came). Takes effect at the next restart.',
      ),
    checkpointRecords: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe(
        'A signed checkpoint line is written after this many lines since the last one (and every checkpointMs, at rotation and at shutdown). Takes effect at the next restart.',
      ),
    checkpointMs: z
      .number()
      .int()
      .min(100)
      .default(60_000)
      .describe(
        'A signed checkpoint line is written at least this often, also when no request came: a gap in checkpoints is visible. Takes effect at the next restart.',
      ),
    signingKey: z
      .string()
      .min(1)
      .optional()
      .describe(
        'File (a mounted Secret) holding the Ed25519 private key, PKCS#8 PEM, that signs checkpoints as JWS (EdDSA); `lm-gate audit keygen` makes a pair and `lm-gate audit verify --key PUBLIC.pem` checks them. Unset: checkpoints are written unsigned (the hash chain still detects edits, but not a rewritten chain). Takes effect at the next restart.',
      )
      .meta({ examples: ['/etc/lm-gate/audit-key.pem'] }),
    capture: captureConfig,
  })
  .strict()
  .prefault({})
  .describe(
    'One JSON line per request (who, what, which decision, usage), never its content (audit.capture keeps content apart), hash-chained and checkpointed with signatures (docs/audit.md).',
  );

export type AuditConfig = z.infer<typeof auditConfig>;
