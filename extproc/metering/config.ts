// The `metering` config section: how the metering.usage stage gets token counts out of upstream,
// and what those tokens cost.
import { z } from 'zod';
import { ENCODINGS } from './encodings.ts';

/** Route names as routing.routes[].name spells them. */
const routeName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'route names are 1-64 characters of A-Z a-z 0-9 _ . -');
const modelPattern = z.string().min(1);
const perMillion = z.number().nonnegative().finite();

const price = z
  .object({
    input: perMillion.describe('Price of one million input (prompt) tokens.'),
    cachedInput: perMillion
      .optional()
      .describe(
        'Price of one million input tokens upstream served from its prompt cache (usage.prompt_tokens_details.cached_tokens); the input price when unset.',
      ),
    output: perMillion.default(0).describe('Price of one million output (completion) tokens.'),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD')
      .optional()
      .describe('ISO 4217 currency of this price; metering.currency when unset.'),
  })
  .strict();

const priceTable = z
  .record(modelPattern, price)
  .default({})
  .describe(
    'Prices by the model the gate sends upstream (after aliases), keyed by name or by pattern where * matches any run of characters. An exact name wins over patterns; patterns are tried in the order written.',
  );

const labelSource = z.union([
  z
    .object({
      header: z
        .string()
        .regex(/^[a-z0-9-]{1,64}$/, 'a lower-case header name')
        .refine((h) => !h.startsWith('x-lmgate-'), {
          message: 'x-lmgate-* headers are stripped from client requests by header hygiene; name another',
        })
        .describe('Request header the value is read from (lower-case).'),
    })
    .strict(),
  z
    .object({
      claim: z
        .string()
        .min(1)
        .describe(
          "Principal attribute the value is read from (identity.jwt.issuers[].claims.attributes maps a token's claims to them; API keys and certificates carry theirs).",
        ),
    })
    .strict(),
]);

export const meteringConfig = z
  .object({
    injectStreamUsage: z
      .boolean()
      .default(true)
      .describe(
        'Add stream_options.include_usage to streamed OpenAI requests so upstream reports usage; the usage event is removed from what a client that did not ask for it receives, so it sees the stream it asked for. false leaves such requests untouched, and their streams are metered only if upstream reports usage unasked.',
      ),
    tokenizers: z
      .object({
        models: z
          .record(modelPattern, z.enum(ENCODINGS))
          .default({})
          .describe(
            "The encoding that is a model's own tokenizer, by name or pattern (* matches any run of characters), tried before the built-in map of OpenAI's models (gpt-4o*, gpt-4.1*, gpt-5*, o1*, o3*, o4*: o200k_base; gpt-4*, gpt-3.5*, text-embedding-3-*: cl100k_base). Counts with a model's own encoding are recorded as source tokenizer.",
          ),
        default: z
          .enum(ENCODINGS)
          .default('o200k_base')
          .describe('Encoding for models with no exact tokenizer; their counts are recorded as source estimated.'),
      })
      .strict()
      .prefault({})
      .describe(
        'Counting tokens when upstream reports no usage (a server that does not, a stream cut short): the gate tokenizes the prompt and the completion text the client received. Large texts are counted on the parse worker threads (server.parseWorkers), never on the event loop.',
      ),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD')
      .default('USD')
      .describe('Currency of prices that name none, and of the zero price an unpriced model gets.'),
    prices: priceTable.meta({
      examples: [
        { 'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 }, 'llama-3.1-*': { input: 0.2, output: 0.2 } },
      ],
    }),
    routePrices: z
      .record(routeName, priceTable)
      .default({})
      .describe(
        'Prices that apply on one route (routing.routes[].name) before metering.prices: the same model can cost differently on a hosted API and on an own GPU pool.',
      )
      .meta({ examples: [{ onprem: { '*': { input: 0.05, output: 0.05 } } }] }),
    labels: z
      .record(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'a lower-case name of up to 32 characters'), labelSource)
      .refine((l) => Object.keys(l).length <= 8, { message: 'at most 8 labels' })
      .default({})
      .describe(
        "Attribution labels recorded with each request's usage and cost (audit metering.labels, lm-gate report --by label.NAME): where each value is read. A value longer than 64 characters or outside A-Z a-z 0-9 . _ : / @ - is recorded as null, so no client can write arbitrary text into the cost data.",
      )
      .meta({ examples: [{ project: { header: 'x-project' }, environment: { claim: 'env' } }] }),
    unknownModel: z
      .enum(['price_zero_warn', 'refuse'])
      .default('price_zero_warn')
      .describe(
        'A model no price covers, when prices are configured: price_zero_warn costs it 0 and logs a warning once per model per process (and counts lmgate_unpriced_requests_total); refuse answers 403 model_not_priced before the request goes upstream. With no prices configured at all, cost is not computed (null in the audit) and nothing is refused.',
      ),
  })
  .strict()
  .prefault({})
  .describe(
    'Token metering from what upstream reports (absent usage is recorded as absent, never as zero), and what the tokens cost.',
  );
