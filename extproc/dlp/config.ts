// The `dlp` config section: named detection policies. The engine (scanner.ts) compiles each
// policy once per config snapshot; dlp.assign picks one per request by caller (assign.ts).
import { z } from 'zod';
import { injectionConfig } from '../guard/config.ts';
import { assignmentProblems, dlpAssignment } from './assign.ts';
import { dlpGateFields } from './gate/config.ts';
import { re2js } from './re2.ts';
import { ACTIONS, BUILTIN_TYPES, DATA_CLASSES } from './types.ts';

const action = z.enum(ACTIONS);
const customName = () =>
  z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'an upper-case name like PROJECT_CODE')
    .refine((n) => !(BUILTIN_TYPES as readonly string[]).includes(n), 'that is a built-in detector name');

const pattern = z
  .object({
    name: customName()
      .describe('The finding type this pattern reports, e.g. PROJECT_CODE.')
      .meta({ examples: ['PROJECT_CODE'] }),
    regex: z
      .string()
      .min(1)
      .describe(
        'An RE2 regular expression (no backreferences or lookaround): it runs on re2js, in time linear in the text, so no pattern can hang the gate.',
      )
      .meta({ examples: ['PRJ-[0-9]{4}'] }),
    caseInsensitive: z.boolean().default(false).describe('Match regardless of case.'),
    maxLength: z
      .int()
      .min(1)
      .max(4096)
      .default(128)
      .describe(
        'The longest match that counts; longer matches are ignored. Streams hold back this many trailing characters while the pattern could still be completing, so keep it small.',
      ),
    action: action.default('redact').describe('What happens to a match.'),
    dataClass: z.enum(DATA_CLASSES).default('custom').describe('The data class a match sets.'),
  })
  .strict();

const wordList = z
  .object({
    name: customName()
      .describe('The finding type these words report, e.g. CODENAME.')
      .meta({ examples: ['CODENAME'] }),
    words: z
      .array(z.string().min(1).max(256))
      .min(1)
      .describe('Words or phrases matched whole (not inside a longer word).')
      .meta({ examples: [['blue falcon', 'nightjar']] }),
    caseSensitive: z.boolean().default(false).describe('Match the case as written.'),
    action: action.default('redact').describe('What happens to a match.'),
    dataClass: z.enum(DATA_CLASSES).default('custom').describe('The data class a match sets.'),
  })
  .strict();

const policy = z
  .object({
    name: z
      .string()
      .min(1)
      .describe('How requests and `lm-gate dlp scan --policy` refer to this policy.')
      .meta({ examples: ['default'] }),
    detectors: z
      .partialRecord(z.enum(BUILTIN_TYPES), z.union([action, z.literal('off')]))
      .default({})
      .describe(
        `Per built-in detector (${BUILTIN_TYPES.join(', ')}): an action, or off. Unlisted detectors run with their default: block for secrets, redact for the rest.`,
      ),
    minConfidence: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Findings below this confidence (after context words) are not reported.'),
    defaultRegion: z
      .string()
      .regex(/^[A-Z]{2}$/)
      .default('US')
      .describe('ISO country whose national format a phone number without +country code is read in.'),
    context: z
      .object({
        window: z
          .int()
          .min(0)
          .max(256)
          .default(48)
          .describe('How many characters before an entity are searched for context words.'),
        raise: z
          .array(z.string().min(1).max(64))
          .default([])
          .describe(
            'Words that raise the confidence of any finding they precede (+0.2), on top of each detector’s own.',
          ),
        lower: z
          .array(z.string().min(1).max(64))
          .default([])
          .describe('Words that lower the confidence of any finding they precede (-0.3), e.g. "sample", "test card".'),
      })
      .strict()
      .prefault({})
      .describe('Context words searched before each entity.'),
    patterns: z.array(pattern).default([]).describe('Custom regular expressions.'),
    wordLists: z.array(wordList).default([]).describe('Custom word lists.'),
    maskKeep: z.int().min(0).max(8).default(4).describe('How many trailing characters `mask` leaves visible.'),
    onError: z
      .enum(['block', 'allow'])
      .default('block')
      .describe(
        'When scanning fails or exceeds timeBudgetMs: block the request (fail closed) or let it through unscanned; the audit record says which happened.',
      ),
    timeBudgetMs: z.number().positive().max(10_000).default(50).describe('Scanning time one request may take.'),
    maxBlockChars: z
      .int()
      .min(4096)
      .max(1 << 20)
      .default(16_384)
      .describe(
        'Unbounded secrets (PEM private keys) are held in streams until their END line; past this many characters the stream fails closed.',
      ),
    injection: injectionConfig,
  })
  .strict();

export const dlpConfig = z
  .object({
    ...dlpGateFields,
    defaultPolicy: z
      .string()
      .min(1)
      .default('default')
      .describe('The policy of a request whose caller no dlp.assign entry matches.'),
    assign: z
      .array(dlpAssignment)
      .default([])
      .describe(
        'Which callers get which policy, in order: the first entry whose from matches the principal wins; none: defaultPolicy. The response is scanned, and its pseudonyms restored, under the policy the request got.',
      ),
    policies: z
      .array(policy)
      .prefault([{ name: 'default' }])
      .describe('Detection policies: which detectors run, what each does, and the custom rules.'),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.policies.forEach((p, i) => {
      if (names.has(p.name))
        ctx.addIssue({ code: 'custom', path: ['policies', i, 'name'], message: `policy "${p.name}" is defined twice` });
      names.add(p.name);
      const types = new Set<string>();
      const custom = [
        ...p.patterns.map((x, j) => ['patterns', j, x.name] as const),
        ...p.wordLists.map((x, j) => ['wordLists', j, x.name] as const),
      ];
      for (const [list, j, name] of custom) {
        if (types.has(name))
          ctx.addIssue({
            code: 'custom',
            path: ['policies', i, list, j, 'name'],
            message: `"${name}" is used twice in this policy`,
          });
        types.add(name);
      }
      p.patterns.forEach((x, j) => {
        try {
          re2js().compile(x.regex);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            path: ['policies', i, 'patterns', j, 'regex'],
            message: `not an RE2 expression: ${(err as Error).message}`,
          });
        }
      });
    });
    for (const p of assignmentProblems(cfg.assign, names)) ctx.addIssue({ code: 'custom', ...p });
    if (!names.has(cfg.defaultPolicy))
      ctx.addIssue({ code: 'custom', path: ['defaultPolicy'], message: `no policy is named "${cfg.defaultPolicy}"` });
  })
  .prefault({})
  .describe('Data loss prevention: detectors for PII, PHI, card data and secrets, and what happens to what they find.');

export type DlpConfig = z.output<typeof dlpConfig>;
export type DlpPolicyConfig = DlpConfig['policies'][number];
/** A policy as written (defaults not yet applied). */
export type DlpPolicyInput = z.input<typeof policy>;
export const dlpPolicySchema = policy;
