// The `audit.capture` config section: which requests have their prompt and response texts kept,
// after the gate's edits (DLP redaction), in capture files linked to the audit chain by digest
// (docs/audit.md, "Capture"). Off unless a rule is configured.
import { z } from 'zod';
import { ruleFrom, ruleTo } from '../policy/config.ts';
import { PRINCIPAL_METHODS, RULE_ENDPOINTS } from '../policy/endpoints.ts';
import { compilePatterns } from '../policy/patterns.ts';

export const DEFAULT_CAPTURE_MAX_CHARS = 16_384;

const captureRule = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'rule ids are 1-64 characters of A-Z a-z 0-9 . _ -')
      .describe('Names the rule in the capture line (rule), so a reviewer knows why a request was kept.')
      .meta({ examples: ['claims-team'] }),
    from: ruleFrom,
    to: ruleTo,
    prompt: z
      .boolean()
      .default(true)
      .describe(
        'Keep the prompt texts as the model server received them: messages[].content (text parts), prompt, input, system, suffix, after DLP redaction.',
      ),
    response: z
      .boolean()
      .default(true)
      .describe(
        "Keep the response texts as the client received them: a JSON answer's message content (or text), a stream's text deltas joined per choice, after DLP redaction.",
      ),
    maxChars: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024)
      .default(DEFAULT_CAPTURE_MAX_CHARS)
      .describe(
        'Most characters (UTF-16 units) kept per direction; beyond it the text is cut (never inside a surrogate pair), the line says truncated and counts the characters not kept. Bounds the memory a request takes.',
      ),
  })
  .strict();

export const captureConfig = z
  .object({
    rules: z
      .array(captureRule)
      .default([])
      .describe(
        'Which requests are captured: the first rule whose from and to match decides (a request no rule matches is not captured). Matched once the request body is in, so to.models and to.routes apply. Captured text may contain personal data: it is written only for requests a rule selects, and only to capture.path. Empty (the default): nothing is captured. Reloads with the config.',
      ),
    path: z
      .string()
      .min(1)
      .default('audit-capture.log')
      .describe(
        'The active capture file, relative to the working directory (not stdout): one JSON line per captured request, rotated like the audit file (PATH.<chain seq>-<UTC time>). A separate file set so captures can be deleted for retention or erasure without breaking the audit chain; each audit record carries the SHA-256 of its capture line. Created on the first capture. Takes effect at the next restart.',
      ),
  })
  .strict()
  .superRefine((capture, ctx) => {
    const ids = new Set<string>();
    capture.rules.forEach((rule, i) => {
      if (ids.has(rule.id))
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate capture rule id "${rule.id}"` });
      ids.add(rule.id);
      // A pattern that can match nothing is a typo that would silently capture nothing.
      for (const [side, field, list, known] of [
        ['to', 'endpoints', rule.to?.endpoints, RULE_ENDPOINTS],
        ['from', 'methods', rule.from?.methods, PRINCIPAL_METHODS],
      ] as const)
        list?.forEach((p, j) => {
          if (!known.some(compilePatterns([p])))
            ctx.addIssue({
              code: 'custom',
              path: ['rules', i, side, field, j],
              message: `capture rule "${rule.id}": "${p}" matches none of ${known.join(', ')}`,
            });
        });
    });
  })
  .prefault({})
  .describe(
    'Prompt and response capture after redaction, per rule, size-capped, in capture files linked to the audit records (docs/audit.md, "Capture"). Off by default.',
  );

export type CaptureConfig = z.infer<typeof captureConfig>;
export type CaptureRuleConfig = CaptureConfig['rules'][number];
