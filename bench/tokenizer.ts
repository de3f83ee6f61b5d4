// What the gate's own token counting costs, for the figures README quotes (metering: "when
// upstream reports none"). It times the gate's functions, not gpt-tokenizer directly:
//   1. Load: bpe(encoding) (extproc/metering/tokenizer.ts) in a fresh process per run, for every
//      encoding encodings.ts maps: wall and CPU time, the RSS and V8 heap it adds (after a full
//      GC), and the first count after it. Median of --processes children.
//   2. Count: countJob (extproc/metering/count.ts, what a parse worker runs) on a chat request of
//      one user message of N bytes of text, per encoding, text kind (prose, code, json, cjk,
//      base64) and size (1, 16, 256 KiB). "cold" clears the encoding's merge cache before every
//      count (text the tokenizer has not seen: the upper bound); "warm" counts the same text again
//      (all its chunks cached: the lower bound). Per KiB of text; CPU time of the process
//      (process.cpuUsage, the steadier figure when other work shares the cores) and wall time,
//      median of --rounds rounds of at least --round-ms each, after a warm-up count.
//   3. Pool: countTokens (extproc/metering/counter.ts) with a ParsePool of one worker, the path
//      the gate takes when its event-loop thread has no encoding loaded (its normal state) or the
//      texts exceed INLINE_COUNT_MAX_BYTES: the first job on a fresh pool (worker start from
//      source, encoding load, count), then per size the end-to-end time of a job, the part spent
//      synchronously on the caller's thread, and countJob inline on the same texts for contrast.
//      Distinct texts per job (seeded), so the worker's merge cache is as warm as a gate's.
// Read the per-KiB columns as the cost of counting that kind of text; the gate counts a request
// on a worker thread, so this is worker CPU, not event-loop time, except for texts of at most
// INLINE_COUNT_MAX_BYTES in a thread that already has the encoding.
//   npm run bench:tokenizer [-- --rounds 7] [-- --quick] [-- --out DIR]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ParsePool } from '../extproc/llm/parse-pool.ts';
import { type CountJob, countJob } from '../extproc/metering/count.ts';
import { countTokens, INLINE_COUNT_MAX_BYTES } from '../extproc/metering/counter.ts';
import { ENCODINGS, type Encoding } from '../extproc/metering/encodings.ts';
import { bpe, countText, isLoaded } from '../extproc/metering/tokenizer.ts';
import { median } from './lib/stats.ts';
import { type TokenizerResult, tokenizerResult } from './lib/tokenizer-result.ts';
import { makeText, TEXT_KINDS, type TextKind } from './lib/tokenizer-texts.ts';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    'round-ms': { type: 'string' },
    processes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const quick = values.quick === true;
const ROUNDS = Number(values.rounds ?? (quick ? 1 : 7));
const ROUND_MS = Number(values['round-ms'] ?? (quick ? 2 : 60));
const PROCESSES = Number(values.processes ?? (quick ? 1 : 3));
const SIZES = quick ? [1024] : [1024, 16 * 1024, 256 * 1024];
const POOL_SIZES = quick ? [1024, 16 * 1024] : [1024, 16 * 1024, 256 * 1024];
const outDir = values.out ?? join(ROOT, 'bench', 'results');
const baseName = quick ? 'tokenizer-quick' : 'tokenizer';

const started = new Date();
const load1Start = loadavg()[0]!;
const log = (m: string) => process.stderr.write(`[tokenizer] ${m}\n`);
const round2 = (x: number) => Math.round(x * 100) / 100;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

function gitCommit(): string {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '+dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

function chatJob(encoding: Encoding, text: string): CountJob {
  const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] });
  return {
    kind: 'openai.chat',
    encoding,
    request: new Uint8Array(Buffer.from(body)),
    responseJson: undefined,
    responseTexts: undefined,
  };
}

// ---- 1. Load, each in a fresh process ----
const CHILD = `
const { bpe, countText } = await import(process.argv[1] + '/extproc/metering/tokenizer.ts');
const { makeText } = await import(process.argv[1] + '/bench/lib/tokenizer-texts.ts');
const text = makeText('prose', 1024);
globalThis.gc(); globalThis.gc();
const m0 = process.memoryUsage();
const c0 = process.cpuUsage();
const t0 = performance.now();
bpe(process.argv[2]);
const wallMs = performance.now() - t0;
const c = process.cpuUsage(c0);
const t1 = performance.now();
countText(process.argv[2], text);
const firstCountMs = performance.now() - t1;
globalThis.gc(); globalThis.gc();
const m1 = process.memoryUsage();
console.log(JSON.stringify({ wallMs, cpuMs: (c.user + c.system) / 1e3, firstCountMs,
  rss: m1.rss - m0.rss, heap: m1.heapUsed - m0.heapUsed }));
`;

const load: TokenizerResult['load'] = [];
for (const encoding of ENCODINGS) {
  const runs: { wallMs: number; cpuMs: number; firstCountMs: number; rss: number; heap: number }[] = [];
  for (let p = 0; p < PROCESSES; p++)
    runs.push(
      JSON.parse(
        execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, ROOT, encoding], {
          encoding: 'utf8',
        }),
      ),
    );
  const m = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
  load.push({
    encoding,
    processes: PROCESSES,
    wallMs: round2(m((r) => r.wallMs)),
    cpuMs: round2(m((r) => r.cpuMs)),
    rssMiB: round2(m((r) => r.rss) / 2 ** 20),
    heapMiB: round2(m((r) => r.heap) / 2 ** 20),
    firstCountMs: round2(m((r) => r.firstCountMs)),
  });
  log(`load ${encoding}: ${JSON.stringify(load.at(-1))}`);
}

// ---- 3 (first, while this thread has no encoding loaded, as a gate's event loop has none) ----
const POOL_ENCODING: Encoding = 'o200k_base';
const pool = new ParsePool({ threads: 1 });
if (isLoaded(POOL_ENCODING)) throw new Error('the encoding is loaded in this thread already');
let t = performance.now();
await countTokens(pool, chatJob(POOL_ENCODING, makeText('prose', 1024, 1)));
const coldFirstJobMs = round2(performance.now() - t);
log(`pool first job: ${coldFirstJobMs} ms`);

const poolJobs = quick ? 4 : 40;
const poolRows: TokenizerResult['pool']['rows'] = [];
const poolTexts = new Map<number, string[]>();
for (const size of POOL_SIZES) {
  const n = size >= 256 * 1024 ? Math.ceil(poolJobs / 4) : poolJobs;
  const texts = Array.from({ length: n + 2 }, (_, i) => makeText('prose', size, 100 + i));
  poolTexts.set(size, texts);
  const e2e: number[] = [];
  const submit: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    const job = chatJob(POOL_ENCODING, texts[i]!);
    t = performance.now();
    const pending = countTokens(pool, job);
    const s = performance.now() - t;
    await pending;
    // The first two are warm-up (JIT, the worker's cache of common words).
    if (i >= 2) {
      e2e.push(performance.now() - t);
      submit.push(s);
    }
  }
  poolRows.push({
    text: 'prose',
    bytes: size,
    endToEndMs: round4(median(e2e)),
    submitMs: round4(median(submit)),
    inlineMs: 0,
  });
}
await pool.close();

// ---- 2. Count, in this thread ----
const require = createRequire(import.meta.url);
/** The encoding module bpe() loaded (same specifier, same module): its merge cache. */
function clearCache(encoding: Encoding): () => void {
  const mod = require(`gpt-tokenizer/cjs/encoding/${encoding}`) as { clearMergeCache(): void };
  if ((mod as unknown) !== bpe(encoding)) throw new Error('not the module the gate loads');
  return () => mod.clearMergeCache();
}

/** Median per-call CPU and wall ms over ROUNDS rounds of enough calls to last ROUND_MS. */
function measure(run: () => void): { cpu: number; wall: number } {
  run(); // warm-up
  let t0 = performance.now();
  run();
  const once = Math.max(performance.now() - t0, 0.001);
  const reps = Math.max(1, Math.ceil(ROUND_MS / once));
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    t0 = performance.now();
    for (let k = 0; k < reps; k++) run();
    wall.push((performance.now() - t0) / reps);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3 / reps);
  }
  return { cpu: median(cpu), wall: median(wall) };
}

const count: TokenizerResult['count'] = [];
for (const encoding of ENCODINGS) {
  const clear = clearCache(encoding);
  for (const kind of TEXT_KINDS as readonly TextKind[])
    for (const size of SIZES) {
      const text = makeText(kind, size);
      const bytes = Buffer.byteLength(text);
      const kib = bytes / 1024;
      const job = chatJob(encoding, text);
      const cold = measure(() => {
        clear();
        countJob(job);
      });
      const warm = measure(() => countJob(job));
      count.push({
        encoding,
        text: kind,
        bytes,
        tokens: countText(encoding, text),
        coldCpuMsPerKiB: round4(cold.cpu / kib),
        coldWallMsPerKiB: round4(cold.wall / kib),
        warmCpuMsPerKiB: round4(warm.cpu / kib),
      });
      log(`count ${encoding} ${kind} ${bytes} B: ${JSON.stringify(count.at(-1))}`);
    }
}

// ---- 3, inline contrast: the pool's texts counted in this thread, in the same order ----
for (const row of poolRows) {
  const texts = poolTexts.get(row.bytes)!;
  clearCache(POOL_ENCODING)();
  const inline: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    const job = chatJob(POOL_ENCODING, texts[i]!);
    t = performance.now();
    countJob(job);
    if (i >= 2) inline.push(performance.now() - t);
  }
  row.inlineMs = round4(median(inline));
}

const result: TokenizerResult = tokenizerResult.parse({
  kind: quick ? 'quick' : 'full',
  command: `npm run bench:tokenizer${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  commit: gitCommit(),
  startedAt: started.toISOString(),
  durationS: round2((Date.now() - started.getTime()) / 1000),
  environment: {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    gptTokenizer: (
      JSON.parse(readFileSync(require.resolve('gpt-tokenizer/package.json'), 'utf8')) as { version: string }
    ).version,
    load1Start: round2(load1Start),
    load1End: round2(loadavg()[0]!),
  },
  rounds: ROUNDS,
  load,
  count,
  pool: { encoding: POOL_ENCODING, inlineMaxBytes: INLINE_COUNT_MAX_BYTES, coldFirstJobMs, rows: poolRows },
});

const md = renderMarkdown(result);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `${baseName}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(outDir, `${baseName}.md`), md);
console.log(md);

function renderMarkdown(r: TokenizerResult): string {
  const kib = (b: number) => `${Math.round(b / 1024)} KiB`;
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
  const lines = [
    '# Token counting cost (metering without upstream usage)',
    '',
    `- Command: \`${r.command}\` at commit \`${r.commit}\`, ${r.startedAt}, ${r.durationS} s`,
    `- Machine: ${r.environment.cores} cores (${r.environment.cpuModel}), load average ${r.environment.load1Start} at start, ${r.environment.load1End} at end; Node ${r.environment.node}, gpt-tokenizer ${r.environment.gptTokenizer}`,
    '- A CPU micro-benchmark on a shared machine: other work may have been running beside it (see the load',
    '  average); CPU-time columns are the steadier figures. Written by `bench/tokenizer.ts`, whose header says',
    '  exactly what each figure times.',
    '',
    '## Loading an encoding (bpe(), a fresh process each run)',
    '',
    `Median of ${r.load[0]?.processes ?? 0} processes. RSS and heap: growth across the load, after a full GC. First count: 1 KiB of prose right after the load.`,
    '',
    '| encoding | wall ms | CPU ms | RSS added MiB | heap added MiB | first count ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.load.map(
      (l) =>
        `| ${l.encoding} | ${f(l.wallMs)} | ${f(l.cpuMs)} | ${f(l.rssMiB)} | ${f(l.heapMiB)} | ${f(l.firstCountMs)} |`,
    ),
    '',
    '## Counting, ms per KiB of text (countJob, one chat message)',
    '',
    `Median of ${r.rounds} rounds. cold = merge cache cleared before each count (unseen text, upper bound); warm = the same text again (lower bound). Tokens per KiB for scale.`,
    '',
    '| encoding | text | size | tokens/KiB | cold CPU ms/KiB | cold wall ms/KiB | warm CPU ms/KiB |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...r.count.map(
      (c) =>
        `| ${c.encoding} | ${c.text} | ${kib(c.bytes)} | ${Math.round(c.tokens / (c.bytes / 1024))} | ${f(c.coldCpuMsPerKiB)} | ${f(c.coldWallMsPerKiB)} | ${f(c.warmCpuMsPerKiB)} |`,
    ),
    '',
    `## On the parse pool (countTokens, ${r.pool.encoding}, one worker)`,
    '',
    `The gate counts inline only when the job is at most ${r.pool.inlineMaxBytes} bytes (INLINE_COUNT_MAX_BYTES) and the thread already has the encoding; else on a parse worker (and always there while the event loop has no encoding loaded). First job on a fresh pool (worker start from source, encoding load, count): ${f(r.pool.coldFirstJobMs)} ms.`,
    'Per size, medians over distinct prose texts: end to end (call to result), the synchronous part on the caller (copies, postMessage), and countJob inline on the same texts.',
    '',
    '| text | size | end to end ms | on caller ms | inline ms |',
    '|---|---:|---:|---:|---:|',
    ...r.pool.rows.map(
      (p) => `| ${p.text} | ${kib(p.bytes)} | ${f(p.endToEndMs)} | ${f(p.submitMs)} | ${f(p.inlineMs)} |`,
    ),
    '',
  ];
  return lines.join('\n');
}
