// The bench harness end to end, as CI runs it: `node bench/run.ts --smoke` starts the mock,
// the gates and Envoy, drives every part of the bench for a second or two and writes its
// result. Checked here: the result is well formed (the same schema `npm run bench` writes)
// and the report and chart exist. Latency figures are never asserted: CI machines vary.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { IsolationResult } from './lib/isolation-report.ts';
import { benchResult } from './lib/result.ts';

const run = promisify(execFile);

describe('bench smoke', () => {
  it('runs every part of the bench and writes a well-formed result, report and chart', async () => {
    const out = await mkdtemp(join(tmpdir(), 'lm-gate-bench-smoke-'));
    await run(process.execPath, [join(import.meta.dirname, 'run.ts'), '--smoke', '--out', out], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const result = benchResult.parse(JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8')));
    expect(result.kind).toBe('smoke');
    expect(result.openLoop.map((o) => o.profile).sort()).toEqual([
      'dlp',
      'governed',
      'governed_16k',
      'governed_jwt',
      'passthrough',
    ]);
    // The JWT gate fetched its issuer's keys at startup, never for a request (unknown_kid).
    expect(result.jwks?.fetchesTotal).toMatchObject({ startup: 1 });
    expect(result.jwks?.fetchesTotal.unknown_kid ?? 0).toBe(0);
    expect(result.streaming.routes.map((r) => r.route)).toEqual([
      'direct',
      'passthrough',
      'governed',
      'observed',
      'dlp',
    ]);
    expect(result.environment.envoy).toMatch(/\d+\.\d+\.\d+/);
    const md = await readFile(join(out, 'smoke.md'), 'utf8');
    expect(md).toContain('## Added latency, open loop');
    expect(md).toContain('## JWT identity: JWKS fetches (governed_jwt)');
    const svg = await readFile(join(out, 'smoke.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('15 ms');
  });

  it('runs the isolation bench: both tenants are admitted and every victim request answered', async () => {
    const out = await mkdtemp(join(tmpdir(), 'lm-gate-isolation-smoke-'));
    await run(
      process.execPath,
      [join(import.meta.dirname, 'isolation.ts'), '--smoke', '--attacker', 'x', '--out', out],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const result = JSON.parse(await readFile(join(out, 'isolation-smoke.json'), 'utf8')) as IsolationResult;
    expect(result.summary.map((p) => p.phase)).toEqual(['unloaded', 'x']);
    for (const p of result.summary) expect(Object.keys(p.victim.statuses)).toEqual(['2xx']);
    // The attacker's bodies are 4 MiB each, back to back: on a small, busy CI machine a few can
    // wait in Envoy's connection to the gate past Envoy's message_timeout, and Envoy answers
    // those 504 itself. That is capacity, which a smoke does not judge; any other status, or a
    // 504 Envoy did not count as its own timeout, is a fault.
    const attacker = result.summary[1]!.attacker!.statuses;
    expect(attacker['2xx']).toBeGreaterThan(0);
    const { '2xx': _ok, '504': timeouts = 0, ...other } = attacker;
    expect(other).toEqual({});
    expect(timeouts).toBe(result.slices[1]!.envoy['attacker.message_timeouts']);
  });
});
