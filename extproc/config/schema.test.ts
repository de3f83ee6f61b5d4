// What the schema fills in and refuses, pinned literally: the sections are composed from the
// capabilities that own them, and moving a field or a default must not change what a config
// means.

import { describe, expect, it } from 'vitest';
import { STAGE_NAMES } from '../pipeline/stages.ts';
import { configSchema } from './schema.ts';

const HASH_A = 'a'.repeat(64);

describe('configSchema', () => {
  it('an empty config parses to exactly these defaults', () => {
    expect(configSchema.parse({})).toStrictEqual({
      server: {
        grpcAddress: '127.0.0.1:50051',
        adminAddress: '127.0.0.1:9901',
        drainTimeoutMs: 15000,
        messageDeadlineMs: 150,
        settleTimeoutMs: 2000,
        maxMessageDeadlineMs: 1500,
        maxRequestBodyBytes: 4194304,
        maxJsonDepth: 64,
        maxBufferedResponseBytes: 1048576,
        workers: 1,
      },
      logging: { level: 'info' },
      // The order and the names are pinned by build.test.ts; the default runs every optional stage.
      pipeline: { stages: [...STAGE_NAMES] },
      identity: {
        apiKeys: [],
        jwt: {
          issuers: [],
          maxTokenBytes: 8192,
          clockToleranceSeconds: 30,
          cachedTokens: 1024,
          jwks: {
            timeoutMs: 2000,
            maxResponseBytes: 262144,
            refreshMs: 300000,
            minRefreshMs: 60000,
            maxRefreshMs: 3600000,
            unknownKidCooldownMs: 30000,
            keyWaitMs: 100,
            failureBackoffMaxMs: 60000,
          },
        },
      },
      policy: { unknownEndpoints: 'reject', rules: [], timeZone: 'UTC' },
      routing: { header: 'x-lmgate-route', routes: [], aliases: {}, principalLabels: [] },
      killSwitch: {
        keys: [],
        users: [],
        teams: [],
        tenants: [],
        models: [],
        resyncIntervalMs: 5000,
        maxEntries: 10000,
      },
      metering: {
        injectStreamUsage: true,
        tokenizers: { models: {}, default: 'o200k_base' },
        currency: 'USD',
        prices: {},
        routePrices: {},
        labels: {},
        unknownModel: 'price_zero_warn',
      },
      limits: {
        store: 'memory',
        onRedisDown: 'closed',
        defaultMaxTokens: 1024,
        bytesPerInputToken: 4,
        headers: true,
        maxMemoryEntries: 100000,
        maxWaiting: 256,
        rate: [],
        budgets: [],
      },
      dlp: {
        inspect: 'off',
        assign: [],
        compressedRequests: 'refuse',
        maxDecompressedBytes: 8 * 1024 * 1024,
        defaultPolicy: 'default',
        policies: [
          {
            name: 'default',
            detectors: {},
            minConfidence: 0.5,
            defaultRegion: 'US',
            context: { window: 48, raise: [], lower: [] },
            patterns: [],
            wordLists: [],
            maskKeep: 4,
            onError: 'block',
            timeBudgetMs: 50,
            maxBlockChars: 16384,
            injection: { action: 'off', threshold: 0.5 },
          },
        ],
      },
      audit: {
        path: 'audit.log',
        maxPendingBytes: 16777216,
        maxRefusalBytes: 8388608,
        durability: 'interval',
        fsyncIntervalMs: 1000,
        rotateBytes: 268435456,
        rotateMs: 86400000,
        checkpointRecords: 10000,
        checkpointMs: 60000,
        capture: { rules: [], path: 'audit-capture.log' },
      },
    });
  });

  it('a section given partly gets the defaults of the rest', () => {
    const c = configSchema.parse({ server: { drainTimeoutMs: 1 }, audit: { path: '-' } });
    expect(c.server).toMatchObject({ drainTimeoutMs: 1, grpcAddress: '127.0.0.1:50051', maxJsonDepth: 64 });
    expect(c.audit).toMatchObject({ path: '-', maxPendingBytes: 16777216, durability: 'interval' });
  });

  it('an api key with only its required fields gets exactly these defaults', () => {
    const c = configSchema.parse({ identity: { apiKeys: [{ id: 'a', sha256: HASH_A, tenant: 't' }] } });
    expect(c.identity.apiKeys).toStrictEqual([
      {
        id: 'a',
        sha256: HASH_A,
        tenant: 't',
        roles: [],
        models: ['*'],
        endpoints: ['*'],
        attributes: {},
        disabled: false,
        labels: {},
      },
    ]);
  });

  it('reports every cross-field problem of a config at once', () => {
    const r = configSchema.safeParse({
      server: { messageDeadlineMs: 500, maxMessageDeadlineMs: 100 },
      pipeline: { stages: ['policy.access', 'policy.access'] },
      identity: {
        apiKeys: [
          { id: 'a', sha256: HASH_A, tenant: 't' },
          { id: 'a', sha256: HASH_A, tenant: 't' },
        ],
      },
    });
    const issues = r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues?.sort()).toEqual([
      'identity.apiKeys.1.id: duplicate key id "a"',
      'identity.apiKeys.1.sha256: duplicate key hash',
      'pipeline.stages: stage "policy.access" listed twice',
      'pipeline.stages: stage "policy.access" needs the parsed fact, which "llm.api_shape" provides: add it',
      'pipeline.stages: stage "policy.access" needs the principal fact, which "identity.authenticate" provides: add it',
      'server.maxMessageDeadlineMs: must be at least server.messageDeadlineMs',
    ]);
  });

  it('refuses killSwitch lists whose stage the pipeline leaves out: nothing would enforce them', () => {
    const r = configSchema.safeParse({
      pipeline: { stages: ['identity.authenticate', 'llm.api_shape'] },
      killSwitch: { users: ['mallory'], models: ['m'], teams: [] },
    });
    expect(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'killSwitch.users: pipeline.stages leaves out killswitch.principal, so nothing would refuse these; add it',
      'killSwitch.models: pipeline.stages leaves out killswitch.model, so nothing would refuse these; add it',
    ]);
    expect(
      configSchema.safeParse({
        pipeline: { stages: ['identity.authenticate', 'killswitch.principal'] },
        killSwitch: { keys: ['k'], tenants: ['t'] },
      }).success,
    ).toBe(true);
  });

  it('redis is optional, and when set gets the defaults of its other fields', () => {
    expect(configSchema.parse({}).redis).toBeUndefined();
    expect(configSchema.parse({ redis: { url: 'redis://r:6379/0' } }).redis).toStrictEqual({
      url: 'redis://r:6379/0',
      keyPrefix: 'lmgate:',
      connectTimeoutMs: 1000,
      commandTimeoutMs: 500,
    });
    expect(configSchema.safeParse({ redis: { url: 'http://r:6379' } }).success).toBe(false);
  });

  it('a section that fails its types still lets the others report their cross-field problems', () => {
    const r = configSchema.safeParse({
      logging: { level: 'loud' },
      identity: {
        apiKeys: [
          { id: 'a', sha256: HASH_A, tenant: 't' },
          { id: 'b', sha256: HASH_A, tenant: 't' },
        ],
      },
    });
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['logging.level', 'identity.apiKeys.1.sha256']);
  });
});
