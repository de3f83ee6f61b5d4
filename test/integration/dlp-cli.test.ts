// `lm-gate dlp scan` as a user runs it: the real binary over a JSON-lines file, its output
// lines in input order with code point offsets, the same findings the engine gives in-process,
// and mistakes as one line with exit 2 (command line) or 1 (input, config).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileDlp } from '../../extproc/dlp/compile.ts';
import { generateCorpus } from '../dlp/corpus.ts';
import { runCli } from '../harness/cli.ts';
import { tempDir } from '../harness/temp-dirs.ts';

let dir: string;
const corpus = generateCorpus(21, 300);

beforeAll(async () => {
  dir = await tempDir('lm-gate-dlp-cli-');
  await writeFile(join(dir, 'corpus.jsonl'), corpus.map((s) => JSON.stringify({ id: s.id, text: s.text })).join('\n'));
  await writeFile(join(dir, 'bad.jsonl'), '{"id":1,"text":"ok"}\n{oops\n');
  await writeFile(
    join(dir, 'gate.yaml'),
    'dlp: { policies: [{ name: default, detectors: { EMAIL: pseudonymise } }] }\n',
  );
});

describe('lm-gate dlp scan', () => {
  it('scans a corpus file: one line per input line, in order, the engine’s findings in code points', async () => {
    const run = await runCli(['dlp', 'scan', join(dir, 'corpus.jsonl')], 60_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out.map((o) => o.id)).toEqual(corpus.map((s) => s.id));
    const scanner = compileDlp({ name: 'default' });
    out.forEach((o, i) => {
      const text = corpus[i]!.text;
      const points = [...text];
      const expected = scanner
        .scan(text)
        .map((f) => ({ type: f.type, value: text.slice(f.start, f.end), action: f.action }));
      expect(
        o.findings.map((f: { type: string; start: number; end: number; action: string }) => ({
          type: f.type,
          value: points.slice(f.start, f.end).join(''),
          action: f.action,
        })),
      ).toEqual(expected);
    });
  });

  it('takes the policy from -c', async () => {
    await writeFile(join(dir, 'one.jsonl'), '{"id":"m","text":"mail a@example.com"}\n');
    const run = await runCli(['dlp', 'scan', '-c', join(dir, 'gate.yaml'), join(dir, 'one.jsonl')]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      id: 'm',
      findings: [{ type: 'EMAIL', start: 5, end: 18, action: 'pseudonymise' }],
    });
  });

  it('one line and an exit code for each mistake', async () => {
    const bad = await runCli(['dlp', 'scan', join(dir, 'bad.jsonl')]);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, `lm-gate dlp scan: ${join(dir, 'bad.jsonl')} line 2: not JSON`]);
    // The line before the bad one was already answered.
    expect(bad.stdout).toBe('{"id":1,"findings":[]}\n');
    const usage = await runCli(['dlp', 'scan', '--format', 'xml']);
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
    const policy = await runCli(['dlp', 'scan', '--policy', 'strict', join(dir, 'one.jsonl')]);
    expect([policy.code, policy.stderr.trim()]).toEqual([
      1,
      'lm-gate dlp scan: no DLP policy is named "strict"; policies: default',
    ]);
  });
});
