// Prompt and response capture (audit.capture) through real Envoy, two gate workers and the
// official openai client: with a capture rule for one tenant and DLP redacting e-mail addresses,
// a streamed and a non-streamed request give capture lines holding the redacted texts, never the
// address; another tenant's requests are not captured; `lm-gate audit query --with-capture` shows
// them beside their records; `lm-gate audit verify` passes over the
// audit and capture files, names a changed capture line, and still passes (reporting erased
// captures) once the capture files are deleted.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../extproc/audit/chain.ts';
import { rotatedFiles } from '../../extproc/audit/files.ts';
import { auditLine, captureLineSchema } from '../../extproc/audit/record-schema.ts';
import { runCli } from '../harness/cli.ts';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const alice = makeKey('alice', { tenant: 'acme' });
const bob = makeKey('bob', { tenant: 'globex' });
const ADDRESS = 'jane.doe@example.com';
let stack: Stack;
let capturePath: string;

beforeAll(async () => {
  capturePath = join(await tempDir('lm-gate-capture-'), 'capture.log');
  stack = await startStack({
    keys: [alice, bob],
    workers: 2,
    gateExtra: {
      dlp: { inspect: 'both', policies: [{ name: 'default', detectors: { EMAIL: 'redact' } }] },
      audit: {
        durability: 'strict',
        capture: { path: capturePath, rules: [{ id: 'acme-review', from: { tenants: ['acme'] } }] },
      },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const client = (key: string) => new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0 });
const ask = (content: string) => ({ model: 'mock-small', messages: [{ role: 'user' as const, content }] });
const pieces = (p: string[]) => ({ 'x-mock-pieces': encodeURIComponent(JSON.stringify(p)) });
const lines = async (files: string[]) =>
  (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('').split('\n').filter(Boolean);

describe('capture through Envoy', () => {
  it('keeps redacted prompts and responses for the selected tenant only, linked and verifiable', async () => {
    const json = await client(alice.key)
      .chat.completions.create(ask(`Write to ${ADDRESS} today`), {
        headers: { 'x-mock-content': encodeURIComponent(`Sent to ${ADDRESS}.`), 'x-request-id': 'cap-json' },
      })
      .withResponse();
    expect(json.data.choices[0]?.message.content).toBe('Sent to [REDACTED:EMAIL].');

    const stream = await client(alice.key).chat.completions.create(
      { ...ask(`Also ${ADDRESS}`), stream: true },
      { headers: { ...pieces(['Cc jane.d', 'oe@example.com', ' done']), 'x-request-id': 'cap-stream' } },
    );
    let streamed = '';
    for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe('Cc [REDACTED:EMAIL] done');

    await client(bob.key).chat.completions.create(ask(`Globex ${ADDRESS}`), {
      headers: { 'x-request-id': 'no-cap' },
    });
    expect(await stack.gate.stop()).toBe(0);

    const auditFiles = [...(await rotatedFiles(stack.gate.auditPath)), stack.gate.auditPath];
    const captureFiles = [...(await rotatedFiles(capturePath)), capturePath];
    const records = (await lines(auditFiles)).map((l) => JSON.parse(l)).filter((r) => r.type === 'request');
    for (const r of records) expect(auditLine.safeParse(r).error?.issues ?? []).toEqual([]);
    const byId = new Map(records.map((r) => [r.request_id, r]));
    const captured = await lines(captureFiles);
    const all = captured.join('\n');
    expect(all).not.toContain('jane.d');
    expect(all).not.toContain('Globex');
    const caps = new Map(captured.map((l) => [JSON.parse(l).request_id, { line: l, o: JSON.parse(l) }]));
    expect([...caps.keys()].sort()).toEqual(['cap-json', 'cap-stream']);
    for (const { o } of caps.values()) expect(captureLineSchema.safeParse(o).error?.issues ?? []).toEqual([]);

    expect(caps.get('cap-json')!.o).toMatchObject({
      rule: 'acme-review',
      prompt: [{ role: 'user', text: 'Write to [REDACTED:EMAIL] today' }],
      response: [{ choice: 0, text: 'Sent to [REDACTED:EMAIL].' }],
    });
    expect(caps.get('cap-stream')!.o).toMatchObject({
      prompt: [{ role: 'user', text: 'Also [REDACTED:EMAIL]' }],
      response: [{ choice: 0, text: 'Cc [REDACTED:EMAIL] done' }],
    });
    for (const [id, { line }] of caps) expect(byId.get(id)!.capture.sha256).toBe(sha256Hex(line));
    expect(byId.get('no-cap')!.capture).toBeNull();
    expect(JSON.stringify(records)).not.toContain('REDACTED');

    const ok = await runCli(['audit', 'verify', ...auditFiles, ...captureFiles], 30_000);
    expect(ok.stdout).toMatch(/^ok: /);
    expect(ok.stdout).toMatch(/captures: 1 file\(s\), 2 line\(s\) match their records, 0 erased/);
    expect(ok.code).toBe(0);

    // audit query reads the capture lines with the records: --captured selects, --with-capture shows.
    const q = await runCli(
      ['audit', 'query', '--format', 'json', '--tenant', 'acme', '--with-capture', ...auditFiles, ...captureFiles],
      30_000,
    );
    expect(q.code).toBe(0);
    const rows = q.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => [r.request_id, r.prompt, r.response])).toEqual([
      ['cap-json', 'user: Write to [REDACTED:EMAIL] today', 'Sent to [REDACTED:EMAIL].'],
      ['cap-stream', 'user: Also [REDACTED:EMAIL]', 'Cc [REDACTED:EMAIL] done'],
    ]);
    const onlyCaptured = await runCli([
      'audit',
      'query',
      '--format',
      'csv',
      '--captured',
      ...auditFiles,
      ...captureFiles,
    ]);
    expect(onlyCaptured.stdout.split('\n').filter(Boolean)).toHaveLength(3); // header + 2

    // A capture line changed after the fact is found and named.
    const original = await readFile(capturePath, 'utf8');
    await writeFile(capturePath, original.replace('Write to [REDACTED:EMAIL] today', 'Write to nobody today'));
    const bad = await runCli(['audit', 'verify', ...auditFiles, ...captureFiles], 30_000);
    expect(bad.stdout).toMatch(/^FAIL .*capture\.log:\d+: capture line of request "cap-json" does not match/);
    expect(bad.code).toBe(1);

    // Erased (retention): the chain still verifies, and says what is gone.
    for (const f of captureFiles) await rm(f);
    const erased = await runCli(['audit', 'verify', ...auditFiles], 30_000);
    expect(erased.stdout).toMatch(/^ok: /);
    expect(erased.stdout).toMatch(/captures: 0 file\(s\), 0 line\(s\) match their records, 2 erased/);
    expect(erased.code).toBe(0);
  });
});
