// The documented record is the written record: docs/audit-record.schema.json and the field table
// of docs/audit.md are what record-schema.ts generates (run `node scripts/audit-docs.ts` after a
// change), and records the gate builds for real requests (runStage, through the state machine)
// validate against the schema once linked into the chain. test/e2e/audit.test.ts validates
// every line of a real run through Envoy.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { schemaText, withTable } from '../../scripts/audit-docs.ts';
import { runStage } from '../../test/harness/run-stage.ts';
import { generateApiKey, hashApiKey } from '../identity/api-keys.ts';
import { Chain } from './chain.ts';
import { auditLine } from './record-schema.ts';

const root = join(import.meta.dirname, '..', '..');
const alice = generateApiKey('alice');
const apiKeys = [{ id: 'alice', sha256: hashApiKey(alice), tenant: 'acme', team: 'claims', roles: ['member'] }];
const chat = (extra: Record<string, unknown> = {}) => ({
  method: 'POST',
  path: '/v1/chat/completions?api-version=1',
  headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
  body: { model: 'mock-small', messages: [{ role: 'user', content: 'hi' }], max_tokens: 9, ...extra },
});

describe('audit record schema', () => {
  it('docs/audit-record.schema.json is generated from record-schema.ts', async () => {
    expect(await readFile(join(root, 'docs', 'audit-record.schema.json'), 'utf8')).toBe(schemaText());
  });

  it("docs/audit.md's field table is generated from record-schema.ts", async () => {
    const doc = await readFile(join(root, 'docs', 'audit.md'), 'utf8');
    expect(doc).toBe(withTable(doc));
  });

  it('records of real requests validate: admitted, streamed, refused, failed upstream', async () => {
    const runs = [
      await runStage({
        stages: ['identity.authenticate', 'llm.api_shape', 'metering.usage'],
        config: { identity: { apiKeys } },
        request: chat(),
        response: {
          headers: { 'content-type': 'application/json' },
          chunks: [
            JSON.stringify({
              id: 'x',
              object: 'chat.completion',
              model: 'mock-small-v2',
              choices: [],
              usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
            }),
          ],
        },
      }),
      await runStage({
        stages: ['identity.authenticate', 'llm.api_shape', 'metering.usage'],
        config: { identity: { apiKeys } },
        request: chat({ stream: true }),
        response: { headers: { 'content-type': 'text/event-stream' }, chunks: ['data: [DONE]\n\n'] },
      }),
      await runStage({
        stages: ['identity.authenticate'],
        config: { identity: { apiKeys } },
        request: { ...chat(), headers: { authorization: 'Bearer lmg_alice_wrong' } },
      }),
      await runStage({
        stages: ['identity.authenticate', 'llm.api_shape'],
        config: { identity: { apiKeys } },
        request: chat(),
        response: { status: 502, headers: { 'content-type': 'application/json' }, chunks: ['{}'] },
      }),
    ];
    const chain = new Chain();
    for (const run of runs) {
      const line = chain.link('request', JSON.stringify(run.audit));
      const parsed = auditLine.safeParse(JSON.parse(line));
      expect(parsed.error?.issues ?? [], line).toEqual([]);
    }
    expect(runs.map((r) => [r.audit.status, r.audit.outcome])).toEqual([
      [200, 'completed'],
      [200, 'completed'],
      [401, 'rejected'],
      [502, 'upstream_error'],
    ]);
    expect(runs[0]!.audit.gen_ai.usage).toEqual({ input_tokens: 3, output_tokens: 4 });
  });

  it('rejects a record with a field the schema does not document', () => {
    const line = new Chain().link('request', JSON.stringify({ schema_version: 2, undocumented: 1 }));
    expect(auditLine.safeParse(JSON.parse(line)).success).toBe(false);
  });
});
