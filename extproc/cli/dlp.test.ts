// `lm-gate dlp scan` in-process: JSON lines in, one line per input line out, in order, with
// code point offsets; the policy from a config; the table format; mistakes as one line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codePointOffsets, dlpCommand } from './dlp.ts';
import { CommandError, UsageError } from './usage.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lmg-dlp-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function scan(args: string[], stdin = ''): Promise<string> {
  let out = '';
  const code = await dlpCommand(['scan', ...args], {
    stdin: Readable.from([stdin]),
    write: (t) => {
      out += t;
    },
  });
  expect(code).toBe(0);
  return out;
}
const lines = (out: string) =>
  out
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('lm-gate dlp scan', () => {
  it('writes one line per input line, in order, offsets in code points of the raw text', async () => {
    const input = [
      { id: 'emoji', text: '😀😀 write to jane@example.com' },
      { id: 2, text: 'nothing here' },
      { id: 'cjk', text: '中文内容，卡号 4111 1111 1111 1111。' },
      { id: 'zw', text: 'key AK\u200bIAZ3MSJV6WWQXWFT2K' },
    ];
    const out = lines(await scan([], input.map((l) => JSON.stringify(l)).join('\n')));
    expect(out).toEqual([
      { id: 'emoji', findings: [{ type: 'EMAIL', start: 12, end: 28, action: 'redact' }] },
      { id: 2, findings: [] },
      { id: 'cjk', findings: [{ type: 'CREDIT_CARD', start: 8, end: 27, action: 'redact' }] },
      { id: 'zw', findings: [{ type: 'AWS_ACCESS_KEY', start: 4, end: 25, action: 'block' }] },
    ]);
    // The spans cut the entity out of the text counted in code points.
    expect([...input[0]!.text].slice(12, 28).join('')).toBe('jane@example.com');
    expect([...input[2]!.text].slice(8, 27).join('')).toBe('4111 1111 1111 1111');
  });

  it('reads a FILE, and uses the policy named with --policy from -c', async () => {
    const config = join(dir, 'c.yaml');
    await writeFile(
      config,
      'dlp:\n  policies:\n    - name: default\n    - name: strict\n      detectors: { EMAIL: pseudonymise, PHONE: "off" }\n      patterns: [{ name: TICKET, regex: "TCK-[0-9]{4}", action: block }]\n',
    );
    const file = join(dir, 'in.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'x', text: 'a@example.com TCK-1234 call +44 20 7946 0958' })}\n`);
    expect(lines(await scan(['-c', config, '--policy', 'strict', file]))).toEqual([
      {
        id: 'x',
        findings: [
          { type: 'EMAIL', start: 0, end: 13, action: 'pseudonymise' },
          { type: 'TICKET', start: 14, end: 22, action: 'block' },
        ],
      },
    ]);
    expect(lines(await scan(['-c', config, file]))[0].findings.map((f: { type: string }) => f.type)).toEqual([
      'EMAIL',
      'PHONE',
    ]);
  });

  it('--format table, for people: a header and one row per finding, never the value', async () => {
    const out = await scan(['--format', 'table'], '{"id":"r1","text":"SSN 536-22-1234"}\n');
    expect(out.split('\n')[0]).toMatch(/^id\s+type\s+start\s+end\s+action\s+confidence$/);
    expect(out.split('\n')[1]).toMatch(/^r1\s+US_SSN\s+4\s+15\s+redact\s+1\.00$/);
    expect(out).not.toContain('536-22-1234');
  });

  it('refuses what it cannot do, in one line', async () => {
    await expect(scan(['--format', 'xml'])).rejects.toThrow(UsageError);
    await expect(scan(['--policy', 'nope'])).rejects.toThrow(/no DLP policy is named "nope"; policies: default/);
    await expect(scan([], 'not json\n')).rejects.toThrow(/stdin line 1: not JSON/);
    await expect(scan([], '{"id":1}\n')).rejects.toThrow(CommandError);
    await expect(scan([join(dir, 'missing.jsonl')])).rejects.toThrow(/no such file/);
  });

  it('cuts lines out of chunks whatever their borders: inside a line, a CRLF or a UTF-8 character', async () => {
    const input = `${JSON.stringify({ id: 'a', text: '😀 jane@example.com' })}\r\n\n${JSON.stringify({ id: 'b', text: 'call 536-22-1234' })}\n${JSON.stringify({ id: 'c', text: 'none' })}`;
    const bytes = Buffer.from(input);
    const whole = await scan([], input);
    expect(lines(whole).map((l: { id: string }) => l.id)).toEqual(['a', 'b', 'c']);
    for (let cut = 1; cut < bytes.length; cut++) {
      let out = '';
      await dlpCommand(['scan'], {
        stdin: Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)]),
        write: (t) => {
          out += t;
        },
      });
      expect(out, `cut at byte ${cut}`).toBe(whole);
    }
    // Lines before a bad one are written before the error.
    let out = '';
    const bad = dlpCommand(['scan'], {
      stdin: Readable.from([`${JSON.stringify({ id: 'ok', text: 'x' })}\nnot json\n`]),
      write: (t) => {
        out += t;
      },
    });
    await expect(bad).rejects.toThrow(/stdin line 2: not JSON/);
    expect(out).toBe('{"id":"ok","findings":[]}\n');
  });

  it('codePointOffsets maps UTF-16 offsets, surrogate pairs counted once', () => {
    const text = 'a😀b𝄞c';
    expect(codePointOffsets(text, [0, 1, 3, 4, 6, 7])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(codePointOffsets(text, [7, 0])).toEqual([5, 0]);
    // The last offset inside a pair, and pairs after the last offset.
    expect(codePointOffsets(text, [5, 1])).toEqual([3, 1]);
    expect(codePointOffsets(text, [2])).toEqual([1]);
    expect(codePointOffsets(text, [])).toEqual([]);
  });
});
