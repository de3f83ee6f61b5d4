// The keys file (identity.keysFile): API keys kept apart from the config, typically a Kubernetes
// Secret mounted as a volume, and edited by `lm-gate keys ... --file`. It is YAML or JSON,
// `{keys: [...]}`, each entry shaped exactly like an identity.apiKeys entry. Its keys join the
// config's in the one key list a config snapshot carries (identity.apiKeys), so every stage and
// every gate worker sees one list, however the keys were written down.
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { apiKeyConfig, duplicateKeyIssues } from '../identity/config.ts';
import { ConfigError } from './config-error.ts';
import { describeIssue, formatPath } from './issues.ts';
import type { ApiKeyConfig, Config } from './schema.ts';
import { problemList, readYaml } from './yaml.ts';

export const keysFileSchema = z
  .object({ keys: z.array(apiKeyConfig) })
  .strict()
  .superRefine((file, ctx) => {
    for (const issue of duplicateKeyIssues(file.keys))
      ctx.addIssue({ code: 'custom', path: ['keys', ...issue.path], message: issue.message });
  });

export type KeysFile = z.infer<typeof keysFileSchema>;

const INVALID = 'invalid keys file';

export const EMPTY_KEYS_FILE = 'the file is empty (or only comments); a file without keys says keys: []';

/** A keys file's text as its entries, defaults filled. Throws ConfigError listing every problem,
 * each as keys[2].expiresAt: ... */
export function parseKeysFile(text: string, path: string): ApiKeyConfig[] {
  const raw = readYaml(text, path, INVALID);
  // An empty file is far more often a truncated write or a wrong path than a wish for no keys.
  if (raw === undefined) throw new ConfigError(path, [EMPTY_KEYS_FILE], problemList(path, INVALID, [EMPTY_KEYS_FILE]));
  const result = keysFileSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map(describeIssue);
    throw new ConfigError(path, problems, problemList(path, INVALID, problems));
  }
  return result.data.keys;
}

/** Where the config's keys file is: identity.keysFile, relative to the config file's directory. */
export function keysFilePath(configPath: string, config: Config): string | undefined {
  const file = config.identity.keysFile;
  return file === undefined ? undefined : resolve(dirname(configPath), file);
}

/** The config with the keys file's keys after its own. A key id (or hash) in both is refused,
 * naming both places: which entry was meant cannot be guessed. */
export function withFileKeys(config: Config, configPath: string, keys: ApiKeyConfig[], keysPath: string): Config {
  const problems: string[] = [];
  const ids = new Map<string, number>();
  const hashes = new Map<string, string>();
  config.identity.apiKeys.forEach((k, i) => {
    ids.set(k.id, i);
    hashes.set(k.sha256, `identity.apiKeys[${i}].sha256`);
    if (k.previous) hashes.set(k.previous.sha256, `identity.apiKeys[${i}].previous.sha256`);
  });
  keys.forEach((k, i) => {
    const there = ids.get(k.id);
    if (there !== undefined)
      problems.push(
        `${formatPath(['keys', i, 'id'])}: duplicate key id "${k.id}": also in ${configPath} at identity.apiKeys[${there}]`,
      );
    for (const [path, hash] of [
      [['keys', i, 'sha256'], k.sha256],
      [['keys', i, 'previous', 'sha256'], k.previous?.sha256],
    ] as const) {
      const other = hash === undefined ? undefined : hashes.get(hash);
      if (other !== undefined)
        problems.push(`${formatPath(path)}: duplicate key hash: also in ${configPath} at ${other}`);
    }
  });
  if (problems.length > 0) throw new ConfigError(keysPath, problems, problemList(keysPath, INVALID, problems));
  return { ...config, identity: { ...config.identity, apiKeys: [...config.identity.apiKeys, ...keys] } };
}
