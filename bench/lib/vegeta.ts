// The load generator: vegeta (github.com/tsenart/vegeta), pinned in scripts/toolchain.env and
// installed by the bench itself with `go install` into .cache/. Chosen because it is open-loop
// by design (requests leave on a fixed schedule whatever the responses do, so a slow gate
// cannot hide its tail by slowing the load: no coordinated omission), it has a closed-loop mode
// for saturation (-rate=0 with a fixed worker pool), it writes every request's result so our
// percentiles are exact rather than read off buckets, it reports HDR histograms itself, and it
// is one small Go binary, which matters on a 2-core machine where the load generator competes
// with Envoy, the gate and the mock.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { ROOT } from '../../test/harness/envoy.ts';
import { toolchain } from '../../test/harness/toolchain.ts';

const run = promisify(execFile);

export { toolchain };

export const VEGETA_VERSION = toolchain().VEGETA_VERSION ?? '12.12.0';

/** VEGETA_BIN, else the pinned version in .cache/, installed there on first use. */
export async function ensureVegeta(log: (m: string) => void): Promise<string> {
  if (process.env.VEGETA_BIN) return process.env.VEGETA_BIN;
  const dir = join(ROOT, '.cache', `vegeta-v${VEGETA_VERSION}`);
  const bin = join(dir, 'vegeta');
  if (existsSync(bin)) return bin;
  log(`installing vegeta v${VEGETA_VERSION} (go install) into .cache/`);
  await mkdir(dir, { recursive: true });
  try {
    await run('go', ['install', `github.com/tsenart/vegeta/v12@v${VEGETA_VERSION}`], {
      env: { ...process.env, GOBIN: dir, CGO_ENABLED: '0' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('the bench installs vegeta with Go: put `go` on PATH or set VEGETA_BIN');
    throw new Error(`go install vegeta failed:\n${e.stderr ?? String(err)}`);
  }
  return bin;
}

export interface Target {
  /** Which route this is (direct, passthrough, governed…); results are split by it. */
  name: string;
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
}

export interface Attack {
  /** Round-robin over these: one request to each in turn, the finest interleaving there is. */
  targets: Target[];
  /** Requests per second over all targets; 0 = closed loop with `workers` workers. */
  rate: number;
  durationS: number;
  workers?: number;
  timeoutS?: number;
}

export interface Sample {
  /** Latency in milliseconds, request sent to response body read. */
  ms: number;
  ok: boolean;
  /** Seconds since the attack started. */
  at: number;
  /** Why it failed: vegeta's error or the HTTP status. */
  error?: string;
}

export interface AttackResult {
  byTarget: Map<string, { samples: Sample[]; errors: Record<string, number> }>;
  /** Wall time of the attack, seconds (first request sent to last response). */
  elapsedS: number;
}

export async function attack(vegeta: string, a: Attack, workDir: string): Promise<AttackResult> {
  await mkdir(workDir, { recursive: true });
  const targetsFile = join(workDir, 'targets.jsonl');
  const resultsFile = join(workDir, 'results.bin');
  const byUrl = new Map<string, string>();
  const lines = a.targets.map((t) => {
    // Each target gets a distinct URL (its own listener), which is how results are split.
    if (byUrl.has(t.url)) throw new Error(`targets ${byUrl.get(t.url)} and ${t.name} share ${t.url}`);
    byUrl.set(t.url, t.name);
    const header: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(t.headers)) header[k] = [v];
    return JSON.stringify({ method: t.method, url: t.url, header, body: t.body?.toString('base64') });
  });
  await writeFile(targetsFile, `${lines.join('\n')}\n`);

  const args = [
    'attack',
    '-format=json',
    `-targets=${targetsFile}`,
    `-duration=${a.durationS}s`,
    `-timeout=${a.timeoutS ?? 10}s`,
    `-output=${resultsFile}`,
    '-keepalive=true',
  ];
  if (a.rate > 0) {
    args.push(`-rate=${a.rate}/1s`);
  } else {
    const w = a.workers ?? 16;
    args.push('-rate=0', `-workers=${w}`, `-max-workers=${w}`);
  }
  await new Promise<void>((resolve, reject) => {
    const p = spawn(vegeta, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vegeta attack exited ${code}: ${stderr}`))));
  });

  const result: AttackResult = { byTarget: new Map(), elapsedS: 0 };
  for (const t of a.targets) result.byTarget.set(t.name, { samples: [], errors: {} });
  const enc = spawn(vegeta, ['encode', '--to', 'json', resultsFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  const raw: { name: string; ms: number; ok: boolean; t: number; err: string }[] = [];
  for await (const line of createInterface({ input: enc.stdout })) {
    if (!line) continue;
    const r = JSON.parse(line) as { url: string; code: number; latency: number; error: string; timestamp: string };
    const name = byUrl.get(r.url);
    if (name === undefined) continue;
    const t = Date.parse(r.timestamp);
    const ms = r.latency / 1e6;
    first = Math.min(first, t);
    last = Math.max(last, t + ms);
    const ok = r.code >= 200 && r.code < 300 && !r.error;
    raw.push({ name, ms, ok, t, err: ok ? '' : r.error ? shortError(r.error) : `HTTP ${r.code}` });
  }
  await new Promise((r) => (enc.exitCode === null ? enc.once('exit', r) : r(undefined)));
  for (const r of raw) {
    const slot = result.byTarget.get(r.name)!;
    const sample: Sample = { ms: r.ms, ok: r.ok, at: (r.t - first) / 1000 };
    if (!r.ok) sample.error = r.err;
    slot.samples.push(sample);
    if (!r.ok) slot.errors[r.err] = (slot.errors[r.err] ?? 0) + 1;
  }
  result.elapsedS = raw.length > 0 ? (last - first) / 1000 : 0;
  await rm(resultsFile, { force: true });
  return result;
}

/** vegeta's errors carry the whole URL and a Go error chain; keep the cause. */
function shortError(e: string): string {
  const parts = e.split(': ');
  return parts.slice(-1)[0]!.slice(0, 80);
}
