// examples/lm-gate.yaml is the config operators start from: it must load, its ${ENV} defaults must
// give a gate that runs on a laptop, and it must show every field the schema has.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFields } from './json-schema.ts';
import { parseKeysFile } from './keys-file.ts';
import { loadConfigFile } from './load.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'lm-gate.yaml');
const KEYS_EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'keys.yaml');

describe('examples/lm-gate.yaml', () => {
  it('loads, with the defaults of its ${ENV} references when the variables are unset', async () => {
    const c = await loadConfigFile(EXAMPLE, {});
    expect(c.server.grpcAddress).toBe('127.0.0.1:50051');
    expect(c.logging.level).toBe('info');
    expect(c.audit.path).toBe('audit.log');
    expect(c.identity.apiKeys.map((k) => [k.id, k.disabled])).toEqual([
      ['research-notebooks', false],
      ['search-indexer', false],
      ['ci-nightly', true],
    ]);
  });

  it('takes what differs per deployment from the environment', async () => {
    const c = await loadConfigFile(EXAMPLE, {
      LMGATE_GRPC_ADDRESS: '0.0.0.0:50051',
      LMGATE_LOG_LEVEL: 'debug',
      LMGATE_AUDIT_PATH: '-',
    });
    expect([c.server.grpcAddress, c.logging.level, c.audit.path]).toEqual(['0.0.0.0:50051', 'debug', '-']);
  });

  it('shows every field, set or commented out', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    const missing = configFields().filter((f) => !new RegExp(`^\\s*(# )?(- )?${f.key}:`, 'm').test(text));
    expect(missing.map((f) => f.path)).toEqual([]);
  });

  it('examples/keys.yaml, the keys file it points to as an example, is a valid keys file', () => {
    const keys = parseKeysFile(readFileSync(KEYS_EXAMPLE, 'utf8'), KEYS_EXAMPLE);
    expect(keys.map((k) => [k.id, k.expiresAt])).toEqual([['claims-assistant', '2027-09-30T00:00:00Z']]);
  });
});
