// The audit stream's lines, field by field, for SIEMs and auditors: the source of
// docs/audit-record.schema.json and of the field table in docs/audit.md (scripts/audit-docs.ts
// writes both; record-schema.test.ts fails on drift and validates records the gate wrote).
// A field added to the record (record.ts) must be added here, with its meaning.
import { z } from 'zod';
import { AUDIT_SCHEMA_VERSION } from './record.ts';
import { MAX_CHARS, MAX_GROUPS } from './refusal-tally.ts';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const chainFields = (type: string) => ({
  type: z.literal(type).describe(`"${type}": the kind of line.`),
  seq: z.number().int().min(0).describe('Position in the chain, from 0, over every line, file and restart.'),
  prev: hex64.describe(
    'SHA-256 (hex) of the exact bytes of the previous line, without its newline; 64 zeros on the first line of the chain.',
  ),
});
const time = z.iso.datetime().describe('UTC time, RFC 3339 with milliseconds.');
const nullableString = (what: string) => z.string().nullable().describe(what);

export const requestLine = z
  .object({
    ...chainFields('request'),
    schema_version: z.literal(AUDIT_SCHEMA_VERSION).describe('Version of the record layout.'),
    time: time.describe('When the request reached the gate (UTC, RFC 3339).'),
    request_id: z.string().describe("Envoy's x-request-id (a client-supplied one is kept), else a UUID the gate made."),
    principal: z
      .object({
        id: z.string().describe("The caller's stable id within its issuer: API key id, JWT subject, certificate SAN."),
        key_id: nullableString('The API key id when the caller used one, else null.'),
        tenant: z.string().describe('Tenant of the caller.'),
        team: nullableString('Team of the caller, or null.'),
        user: nullableString('Person or service of the caller, or null.'),
        roles: z.array(z.string()).describe('Roles the caller carried, which policy read.'),
        method: z.enum(['api_key', 'jwt', 'mtls']).describe('How the caller was identified.'),
        issuer: z.string().describe('Who vouches for the identity: "config", the keys file, a JWT issuer, a CA.'),
      })
      .strict()
      .nullable()
      .describe('Who called; null when no credential was accepted (a 401) or identity did not run.'),
    endpoint: z
      .object({
        method: z.string().describe('HTTP method.'),
        path: z.string().describe('Request path without its query string (query values can carry secrets).'),
        api: z
          .string()
          .describe('API shape the gate recognised (openai.chat, openai.embeddings, ollama.chat, …, unknown).'),
      })
      .strict(),
    gen_ai: z
      .object({
        operation: z
          .object({
            name: nullableString(
              'OpenTelemetry gen_ai.operation.name: chat, text_completion, embeddings; null for listings.',
            ),
          })
          .strict(),
        request: z
          .object({
            model: nullableString('gen_ai.request.model: the model the client asked for (an alias as written).'),
            max_tokens: z
              .number()
              .int()
              .nullable()
              .describe('gen_ai.request.max_tokens: most output tokens asked for.'),
          })
          .strict(),
        response: z
          .object({ model: nullableString('gen_ai.response.model: the model the model server says answered.') })
          .strict(),
        usage: z
          .object({
            input_tokens: z.number().int().describe('gen_ai.usage.input_tokens, as upstream reported.'),
            output_tokens: z.number().int().describe('gen_ai.usage.output_tokens, as upstream reported.'),
          })
          .strict()
          .nullable()
          .describe('Token usage as upstream reported it; null when it reported none (never zero for unknown).'),
      })
      .strict()
      .describe('Model and token facts under OpenTelemetry GenAI semantic convention names.'),
    upstream_model: nullableString('The model name the gate sent upstream (an alias resolved), or null.'),
    route: nullableString('The route the gate chose (routing.routes[].name), or null.'),
    stream: z.boolean().describe('The client asked for a streamed answer.'),
    status: z
      .number()
      .int()
      .nullable()
      .describe('The HTTP status the client saw; null when none was sent (cancelled before).'),
    outcome: z
      .enum(['completed', 'rejected', 'upstream_error', 'local_reply', 'cancelled', 'error'])
      .describe(
        'How the request ended: completed, rejected (by the gate), upstream_error, local_reply (Envoy answered), cancelled, error (the gate failed).',
      ),
    error: z
      .object({
        code: z.string().describe('Error catalog code (README, "Errors"), as the client got it.'),
        type: z.string().describe('OpenAI error type sent to the client.'),
        status: z.number().int().describe('Status of the error answer.'),
        rule_id: nullableString('The rule that refused, when one did.'),
      })
      .strict()
      .nullable()
      .describe('The error the gate answered with, or null.'),
    failure: nullableString(
      'What went wrong beside the answer (a cut stream, a stage that failed at the end), for operators; never content.',
    ),
    latency_ms: z
      .object({
        total: z.number().describe("The ext_proc stream's life in the gate, ms."),
        gate: z.number().describe('Time the gate itself spent on the request, ms (sum of phases).'),
        upstream: z
          .number()
          .nullable()
          .describe(
            'From the gate releasing the request to the response headers reaching it, ms; null when none came.',
          ),
        phases: z.record(z.string(), z.number()).describe('Gate time per ext_proc phase, ms.'),
      })
      .strict(),
    bytes: z
      .object({
        request: z.number().int().describe('Request body bytes the gate saw.'),
        response: z.number().int().describe('Response body bytes the gate saw (0 when it did not read the body).'),
      })
      .strict(),
    metering: z
      .object({
        total_tokens: z.number().int().nullable().describe('Input plus output tokens; null when usage is absent.'),
        source: z
          .enum(['upstream', 'tokenizer', 'estimated'])
          .nullable()
          .describe(
            "Where the token counts came from: upstream (the model server's usage), tokenizer (the gate counted with the model's own encoding), estimated (another encoding, or a stream cut short: the prompt plus what was delivered); null when absent.",
          ),
        cached_input_tokens: z
          .number()
          .int()
          .nullable()
          .describe(
            'Input tokens upstream served from its prompt cache, when it said (prompt_tokens_details.cached_tokens).',
          ),
        cost: z
          .object({
            amount: z.number().describe('Cost of the request in currency units, from metering.prices.'),
            currency: z.string().describe('ISO currency of the amount.'),
          })
          .strict()
          .nullable()
          .describe('What the request cost; null when no price is configured or usage is absent.'),
        labels: z
          .record(z.string(), z.string().nullable())
          .describe('Attribution labels (metering.labels), each null when absent or not a valid label value.'),
      })
      .strict(),
    decisions: z
      .array(
        z
          .object({
            stage: z.string().describe('The stage that decided.'),
            rule_id: z.string().describe('The rule, policy entry or kill that decided.'),
            effect: z.string().describe('allow, deny, or what the stage did.'),
            reason: z.string().describe('Why, in a sentence.'),
          })
          .strict(),
      )
      .describe('Every decision worth explaining later, allow and deny, in order.'),
    limits: z
      .array(
        z
          .object({
            id: z.string().describe('The rate limit (limits.rate[].id).'),
            level: z.string().describe('Whose counter, <scope>:<id>: team:research, model:llama-3.1-8b.'),
            unit: z
              .enum(['requests', 'tokens', 'bytes'])
              .describe('What the limit counts (bytes: request body bytes).'),
            limit: z.number().describe('The limit per its period.'),
            remaining: z.number().describe('What was left after this request, at the decision.'),
            decision: z.enum(['admitted', 'refused']).describe('What this level decided.'),
            reserved: z.number().optional().describe('Tokens reserved before the call (token limits).'),
            settled: z.number().optional().describe('Tokens the reservation was settled to at the end.'),
            queued_ms: z
              .number()
              .optional()
              .describe("Milliseconds the request waited in this limit's queue (queueMs) before this decision."),
            left_queue: z
              .literal(true)
              .optional()
              .describe(
                "The request ended while it waited in this limit's queue (its client went away): the turn it had reserved went back to the next in line.",
              ),
            fail_open: z
              .literal(true)
              .optional()
              .describe('Redis could not answer and the limit failed open: counted in this replica alone.'),
          })
          .strict(),
      )
      .nullable()
      .describe('Rate limit levels checked, each with its decision; null when no limit applied.'),
    budgets: z
      .array(
        z
          .object({
            id: z.string().describe('The budget (limits.budgets[].id).'),
            level: z.string().describe('Whose budget, <scope>:<id>.'),
            unit: z.enum(['tokens', 'currency']).describe('What the budget counts.'),
            period: z.string().describe("The period's first day in the budget's time zone (2026-11-01)."),
            amount: z.number().describe('The budget per period.'),
            reserved: z.number().describe('Reserved before the call (max_tokens or the default, times the price).'),
            settled: z.number().nullable().describe('The real cost or tokens it was settled to; null if not settled.'),
            refunded: z.number().describe('Given back: a failed, cancelled or never-sent request.'),
            state: z
              .enum(['admitted', 'downgraded', 'refused'])
              .describe('admitted; downgraded (spent, sent to its downgradeTo model); refused (429 budget_exceeded).'),
            fail_open: z
              .literal(true)
              .optional()
              .describe('Redis could not answer and the budget failed open: counted in this replica alone.'),
          })
          .strict(),
      )
      .nullable()
      .describe('Budgets checked; null when none applied.'),
    dlp: z
      .object({
        findings: z
          .array(
            z
              .object({
                type: z
                  .string()
                  .describe('The detector or custom rule: EMAIL, US_SSN, AWS_ACCESS_KEY, PROJECT_CODE...'),
                action: z.string().describe('What was done: block, redact, mask, pseudonymise, warn.'),
                where: z.enum(['request', 'response']).describe('Which direction the text went.'),
                path: z
                  .string()
                  .describe('The JSON path of the string (request, buffered response) or the stream channel.'),
                start: z.number().int().describe("UTF-16 offset of the finding in that string or channel's text."),
                end: z.number().int().describe('End offset, exclusive.'),
              })
              .strict(),
          )
          .describe('What DLP found, where, and what it did: never the matched value. The first 100.'),
        findings_dropped: z.number().int().describe('Findings beyond the first 100, counted but not listed.'),
        data_classes: z.array(z.string()).describe('Data classes found (PII, PHI, PCI, SECRET, custom).'),
        failed_open: z
          .string()
          .nullable()
          .describe(
            'Why scanning failed and the policy let the text through unscanned (onError: allow); null otherwise.',
          ),
        policy: z
          .string()
          .nullable()
          .describe('The DLP policy the request got (dlp.assign, else dlp.defaultPolicy); null when none was picked.'),
        injection: z
          .object({
            score: z.number().min(0).max(1).describe('The highest heuristic injection score of any text scored.'),
            threshold: z.number().describe("The policy's injection threshold."),
            rules: z
              .array(z.string())
              .describe('Heuristic rule ids that fired in any text (injection.override, injection.base64/...).'),
            path: z.string().nullable().describe('JSON path of the highest-scoring text; null when none scored.'),
            detected: z.boolean().describe('The heuristics or the classifier judged the request an injection.'),
            action: z
              .enum(['block', 'flag'])
              .describe("The policy's action: block (refused, 403 prompt_injection) or flag (admitted)."),
            classifier: z
              .object({
                result: z
                  .enum(['score', 'timeout', 'unreachable', 'bad_status', 'bad_answer', 'aborted'])
                  .describe('score: it answered; otherwise why it did not.'),
                score: z.number().nullable().describe('Its score; null when it did not answer.'),
                ms: z.number().describe('How long the call took.'),
                truncated: z.boolean().describe('The text sent was cut to classifier.maxChars.'),
                on_error: z
                  .enum(['block', 'allow'])
                  .nullable()
                  .describe('When it failed: what onError did (block refused, allow let through); null otherwise.'),
              })
              .strict()
              .optional()
              .describe('The classifier sidecar; absent when none is configured or the heuristics already blocked.'),
          })
          .strict()
          .optional()
          .describe('The prompt-injection guard (guard.injection), when it judged the request; never the text.'),
      })
      .strict()
      .optional()
      .describe('DLP, when a DLP stage ran for the request.'),
    capture: z
      .object({
        sha256: hex64.describe(
          "SHA-256 (hex) of the request's capture line (its exact bytes, without the newline) in the capture files: `audit verify` checks the line against it.",
        ),
        rule: z.string().describe('The audit.capture rule that selected the request.'),
        prompt_chars: z
          .number()
          .int()
          .nullable()
          .describe(
            'Characters (UTF-16 units) of prompt text the request carried, kept or not; null when not captured.',
          ),
        response_chars: z
          .number()
          .int()
          .nullable()
          .describe(
            'Characters of response text the client received, kept or not; null when not captured (not asked, not a 2xx text answer, or too large to hold).',
          ),
        truncated: z
          .object({
            prompt: z.boolean().describe('The prompt was longer than maxChars: the capture keeps its start.'),
            response: z.boolean().describe('The response was longer than maxChars: the capture keeps its start.'),
          })
          .strict(),
      })
      .strict()
      .nullable()
      .describe(
        "The link to this request's capture line (audit.capture), never its text; null when no capture rule selected it.",
      ),
  })
  .strict()
  .describe('One per request that reached the gate.');

export const checkpointLineSchema = z
  .object({
    ...chainFields('checkpoint'),
    time,
    reason: z
      .enum(['count', 'interval', 'rotate', 'open', 'start', 'shutdown'])
      .describe(
        'Why it was written: count or interval (periodic), rotate (last line of a file), open (first line of a file), start (after a restart), shutdown (clean stop).',
      ),
    file: z.string().describe('Base name of the file it was written to ("-" for stdout).'),
    records: z.number().int().min(0).describe('Request lines since the previous checkpoint.'),
    prev_checkpoint: hex64.nullable().describe("SHA-256 of the previous checkpoint line; null for the chain's first."),
    kid: z.string().nullable().describe('RFC 7638 thumbprint of the signing key; null when unsigned.'),
    jws: z
      .string()
      .nullable()
      .describe(
        'Compact JWS (EdDSA, Ed25519) whose payload is this line\'s exact bytes up to `,"jws":` plus `}`; null when audit.signingKey is unset.',
      ),
  })
  .strict()
  .describe('Commits to every line before it; signed.');

export const breakLine = z
  .object({
    ...chainFields('break'),
    time,
    reason: z.string().describe('Why the chain has a break here.'),
    last_seq: z.number().int().describe('seq of the last complete line the previous writer left.'),
    torn_bytes: z.number().int().min(0).describe('Bytes of a torn last line the restart cut off.'),
  })
  .strict()
  .describe('Written at start when the previous writer stopped without a shutdown checkpoint (a crash).');

const refusalSpan = {
  count: z.number().int().min(1).describe('Refusals counted.'),
  first_time: time.describe('Request time of the earliest refusal counted (UTC, RFC 3339).'),
  last_time: time.describe('Request time of the latest refusal counted.'),
  first_request_id: z.string().describe(`request_id of the earliest (cut to ${MAX_CHARS} characters).`),
  last_request_id: z.string().describe(`request_id of the latest (cut to ${MAX_CHARS} characters).`),
};

export const refusalSummaryLine = z
  .object({
    ...chainFields('refusal_summary'),
    time: time.describe('When the line was written: the sink could write again.'),
    reason: z.string().describe('Why these refusals are counted, not recorded one by one.'),
    refused: z.number().int().min(1).describe('Refused requests this line counts, in groups and other together.'),
    first_time: time.describe('Request time of the earliest refusal counted.'),
    last_time: time.describe('Request time of the latest refusal counted.'),
    groups: z
      .array(
        z
          .object({
            tenant: nullableString("The caller's tenant; null when identity had not run (the usual case)."),
            route: nullableString('The route; null when routing had not run (the usual case).'),
            api: z.string().describe('API shape the gate recognised (openai.chat, …, unknown).'),
            status: z.number().int().nullable().describe('The status the client saw (503).'),
            code: z.string().describe('Error catalog code (audit_unavailable).'),
            ...refusalSpan,
          })
          .strict(),
      )
      .describe(`Counts per tenant, route, API, status and code: at most ${MAX_GROUPS} groups.`),
    other: z
      .object(refusalSpan)
      .strict()
      .nullable()
      .describe(`Refusals past the ${MAX_GROUPS}th group, counted together; null when none.`),
  })
  .strict()
  .describe(
    'Refusals the audit sink caused (503 audit_unavailable) past audit.maxRefusalBytes, counted instead of one request line each; written right after the refusals kept one by one, once the sink writes again.',
  );

/** A line of the capture files (audit.capture.path): not chained, held by its record's
 * capture.sha256. */
export const captureLineSchema = z
  .object({
    type: z.literal('capture').describe('"capture": a line of the capture files.'),
    request_id: z.string().describe('The request_id of the audit record that links this line.'),
    time: time.describe('When the request reached the gate (as its record says).'),
    rule: z.string().describe('The audit.capture rule that selected the request.'),
    prompt: z
      .array(
        z
          .object({
            role: z
              .string()
              .describe(
                'The message role (system, user, assistant, tool), or the field: prompt, input, system, suffix.',
              ),
            text: z.string().describe('The text as the model server received it (after DLP redaction).'),
          })
          .strict(),
      )
      .nullable()
      .describe('Prompt texts in body order, within maxChars; null when the rule keeps no prompt.'),
    response: z
      .array(
        z
          .object({
            choice: z.number().int().describe('The choice index (0 for Ollama).'),
            text: z.string().describe('The text as the client received it (after DLP redaction), a stream joined.'),
          })
          .strict(),
      )
      .nullable()
      .describe('Response texts per choice, within maxChars; null when not captured.'),
    chars: z
      .object({
        prompt: z.number().int().nullable().describe('Prompt characters seen, kept or not.'),
        response: z.number().int().nullable().describe('Response characters seen, kept or not.'),
      })
      .strict(),
    truncated: z
      .object({
        prompt: z.boolean().describe('Prompt text past maxChars was not kept.'),
        response: z.boolean().describe('Response text past maxChars was not kept.'),
      })
      .strict(),
  })
  .strict()
  .describe('The texts of one captured request, in the capture files.');

export const auditLine = z.discriminatedUnion('type', [
  requestLine,
  checkpointLineSchema,
  breakLine,
  refusalSummaryLine,
]);

/** docs/audit-record.schema.json. */
export function auditJsonSchema(): object {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://lm-gate.dev/schemas/audit-record.schema.json',
    title: 'LM Gate audit line',
    ...(z.toJSONSchema(auditLine, { target: 'draft-2020-12' }) as object),
  };
}

/** The field table of docs/audit.md: one row per field of each kind of line. */
export function fieldTable(): string {
  const rows: string[] = ['| line | field | type | meaning |', '| --- | --- | --- | --- |'];
  for (const [line, schema] of [
    ['request', requestLine],
    ['checkpoint', checkpointLineSchema],
    ['break', breakLine],
    ['refusal_summary', refusalSummaryLine],
    ['capture', captureLineSchema],
  ] as const)
    walk(line, '', schema, rows);
  return rows.join('\n');
}

function walk(line: string, prefix: string, schema: z.ZodType, rows: string[]): void {
  const shape = (unwrap(schema) as z.ZodObject).shape as Record<string, z.ZodType>;
  for (const [key, field] of Object.entries(shape)) {
    const path = `${prefix}${key}`;
    const inner = unwrap(field);
    const nullable = field instanceof z.ZodNullable || (field as { isNullable?: () => boolean }).isNullable?.();
    const type = typeName(inner) + (nullable ? ' \\| null' : '');
    rows.push(
      `| ${line} | \`${path}\` | ${type} | ${(field.description ?? inner.description ?? '').replaceAll('|', '\\|')} |`,
    );
    if (inner instanceof z.ZodObject) walk(line, `${path}.`, inner, rows);
    if (inner instanceof z.ZodArray && unwrap(inner.element as z.ZodType) instanceof z.ZodObject)
      walk(line, `${path}[].`, inner.element as z.ZodType, rows);
  }
}

function unwrap(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodNullable ? unwrap(schema.unwrap() as z.ZodType) : schema;
}

function typeName(s: z.ZodType): string {
  if (s instanceof z.ZodObject) return 'object';
  if (s instanceof z.ZodArray) return `${typeName(s.element as z.ZodType)}[]`;
  if (s instanceof z.ZodRecord) return 'object (name → number)';
  if (s instanceof z.ZodLiteral) return JSON.stringify(s.value);
  if (s instanceof z.ZodEnum) return (s.options as string[]).map((o) => `"${o}"`).join(' \\| ');
  if (s instanceof z.ZodNumber) return s.format === 'safeint' || s.isInt ? 'integer' : 'number';
  if (s instanceof z.ZodBoolean) return 'boolean';
  return 'string';
}
