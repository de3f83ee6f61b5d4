// The `killSwitch` config section: what this config kills outright, and how the replica follows
// the kill set shared through Redis (when `redis` is set). Kills in the config are reloaded with
// it; kills in Redis (`lm-gate kill`) reach every replica within a second.
import { z } from 'zod';

const ids = (what: string, example: string) =>
  z
    .array(z.string().min(1).max(256))
    .default([])
    .describe(what)
    .meta({ examples: [[example]] });

export const killSwitchConfig = z
  .object({
    keys: ids(
      'API key ids (identity.apiKeys[].id) refused with 401 invalid_api_key, exactly as an unknown key is, so the holder cannot tell it was killed. Setting disabled: true on the key does the same.',
      'ci-nightly',
    ),
    users: ids(
      "Callers refused with 403 principal_disabled (rule id killSwitch.user.<user>), matched on the principal's user however it was identified.",
      'mallory',
    ),
    teams: ids('Teams whose every caller is refused with 403 principal_disabled (killSwitch.team.<team>).', 'research'),
    tenants: ids(
      'Tenants whose every caller is refused with 403 principal_disabled (killSwitch.tenant.<tenant>).',
      'initech',
    ),
    models: ids(
      "Models refused for every caller with 403 model_disabled (killSwitch.model.<model>) once the request body names them; names, no patterns (every spelling of a name its server resolves to it: case, Ollama's default tag, namespace and host).",
      'llama-3.1-70b',
    ),
    resyncIntervalMs: z
      .number()
      .int()
      .min(100)
      .default(5000)
      .describe(
        "With redis set: milliseconds between full reads of Redis's kill set. Kills arrive within milliseconds by pub/sub; the resync heals one a replica missed (it was disconnected when the kill was announced) and is how a replica catches up after a Redis outage. Takes effect at the next restart.",
      ),
    maxEntries: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe(
        "Most entries a replica loads from Redis's kill set. A larger set is refused whole, logged, and the last one loaded keeps applying: a bound on what one resync may hold in memory. Takes effect at the next restart.",
      ),
  })
  .strict()
  .prefault({})
  .describe(
    'Emergency refusals: keys, users, teams, tenants and models disabled at once, from this config and (with redis) on every replica through Redis (lm-gate kill).',
  );
