// A DLP policy's `injection` block: whether the prompt-injection heuristics (injection.ts) and an
// optional classifier sidecar (classifier.ts) judge the request, and what a detection does.
import { z } from 'zod';

export const injectionClassifierConfig = z
  .object({
    url: z
      .url({ protocol: /^https?$/ })
      .describe('Where the classifier listens: the gate POSTs {"input": text} and reads {"score": 0..1}.')
      .meta({ examples: ['http://127.0.0.1:8099/classify'] }),
    timeoutMs: z
      .int()
      .min(1)
      .max(10_000)
      .default(200)
      .describe(
        'How long the gate waits for an answer; past it the classifier counts as failed (onError). Must be under server.maxMessageDeadlineMs: the gate asks Envoy to wait that long for a request the classifier judges.',
      ),
    threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('A classifier score at or above this is a detection (rule id injection.classifier).'),
    maxChars: z
      .int()
      .min(256)
      .max(1 << 20)
      .default(16_384)
      .describe(
        'The longest text sent: longer prompts are sent as their first and last halves of this many characters.',
      ),
    onError: z
      .enum(['block', 'allow'])
      .default('block')
      .describe(
        'When the classifier times out, is unreachable or answers badly: block refuses the request (fail closed, also under action flag), allow lets it through on the heuristics alone. The audit records the failure and what this did.',
      ),
  })
  .strict();

export const injectionConfig = z
  .object({
    action: z
      .enum(['off', 'flag', 'block'])
      .default('off')
      .describe(
        'off; flag (admitted, the audit and metrics record the detection); block (403 prompt_injection, nothing forwarded). Scored: user, assistant and tool messages, content parts and tool-call arguments, vLLM documents, completions and generate prompts and their suffix. Not scored: system and developer messages, tool definitions and the Ollama system field, which the operator writes. Applies whatever dlp.inspect says (stage guard.injection).',
      ),
    threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe(
        "A text whose heuristic score (0..1; rules' weights combined as noisy-OR) is at or above this is a detection. Each text is scored alone; the request's score is its highest.",
      ),
    classifier: injectionClassifierConfig
      .optional()
      .describe('An HTTP classifier asked after the heuristics, unless they already blocked. Unset: heuristics only.'),
  })
  .strict()
  .prefault({})
  .describe('Prompt-injection and jailbreak detection for requests under this policy.');

export type InjectionConfig = z.output<typeof injectionConfig>;
