// Scan throughput of the default DLP ruleset, in one process, without Envoy or the gate: the
// figure the DLP issue's ≥ 50 MB/s target is about. Inputs: the generated corpus (an entity or
// near-miss every ~100 bytes), a 16 KB prompt of corpus text, prose with about one sample per KB,
// plain prose, and one large text of each (1 MiB, the size of a buffered response). Each figure
// is the median of --repeat runs in CPU time of this thread (the machine is shared), cold: the
// phone memo is cleared before every scan.
// The cmd-mixed and cmd-corpus rows are `lm-gate dlp scan` over 12 MB of JSON lines (the mixed
// 16 KB prompts, or corpus samples one per line), each run in a fresh process as a user runs it:
// the CPU time of the process from the command's start to its end (reading, parsing, scanning,
// writing to /dev/null, the first lines' JIT warm-up and GC included; loading the modules and
// compiling the policy excluded), median of --repeat runs.
//   npm run bench:dlp-scan [-- --repeat 7] [-- --only corpus]
//   sh scripts/dev.sh node --cpu-prof --cpu-prof-dir=.cache/prof bench/dlp-scan.ts --only corpus
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compileDlp } from '../extproc/dlp/compile.ts';
import { generateCorpus } from '../test/dlp/corpus.ts';

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '7' },
    only: { type: 'string' },
    seed: { type: 'string', default: '13' },
  },
});
const REPEAT = Number(values.repeat);
const scanner = compileDlp({ name: 'default' });
const texts = generateCorpus(Number(values.seed), 3000).map((c) => c.text);

function fill(size: number, next: (i: number) => string): string {
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const t = next(i);
    parts.push(t);
    n += t.length;
  }
  return parts.join('').slice(0, size);
}
const PROSE = 'The quarterly report shows steady growth across all regions, with costs under control. ';
const plain = (size: number) => fill(size, () => PROSE);
const dense = (size: number) => fill(size, (i) => `${texts[i % texts.length]}\n`);
const mixed = (size: number) => fill(size, (i) => `${plain(900)}${texts[i % texts.length]}\n`);
const KB16 = 16 * 1024;
const MB1 = 1024 * 1024;

const inputs: [string, string[], number][] = [
  ['corpus', texts, 3],
  ['dense16k', [dense(KB16)], 100],
  ['mixed16k', [mixed(KB16)], 300],
  ['plain16k', [plain(KB16)], 1000],
  ['dense1m', [dense(MB1)], 2],
  ['mixed1m', [mixed(MB1)], 5],
];

function cpuSeconds(run: () => void): number {
  const before = process.cpuUsage();
  run();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`DLP scan throughput, default ruleset, ${process.version}, median of ${REPEAT} (CPU time, cold memo)`);
for (const [name, list, rounds] of inputs) {
  if (values.only !== undefined && !values.only.split(',').includes(name)) continue;
  const bytes = list.reduce((n, t) => n + Buffer.byteLength(t), 0) * rounds;
  for (const t of list) scanner.scan(t); // warm up
  const rates: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    const s = cpuSeconds(() => {
      for (let k = 0; k < rounds; k++)
        for (const t of list) {
          scanner.clearMemo();
          scanner.scan(t);
        }
    });
    rates.push(bytes / s / 1e6);
  }
  const perText = (1e3 * bytes) / median(rates) / 1e6 / (rounds * list.length);
  console.log(
    `  ${name.padEnd(9)} ${median(rates).toFixed(1).padStart(7)} MB/s  (min ${Math.min(...rates).toFixed(1)}, max ${Math.max(...rates).toFixed(1)}; ${perText.toFixed(3)} ms per text)`,
  );
}

/** 12 MB of JSON lines, `{"id","text"}`, from texts drawn in turn. */
function jsonl(next: (i: number) => string): string {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < 12e6; i++) {
    const line = JSON.stringify({ id: i, text: next(i) });
    lines.push(line);
    n += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

/** The command in a fresh process: CPU seconds of that process around dlpCommand. */
const CHILD = `
import { Readable } from 'node:stream';
import { open } from 'node:fs/promises';
const { dlpCommand } = await import(process.argv[1] + '/extproc/cli/dlp.ts');
await import(process.argv[1] + '/extproc/dlp/compile.ts');
const sink = await open('/dev/null', 'w');
const before = process.cpuUsage();
await dlpCommand(['scan', process.argv[2]], { stdin: Readable.from([]), write: (t) => sink.write(t).then(() => {}) });
const used = process.cpuUsage(before);
console.log((used.user + used.system) / 1e6);
`;

const commands: [string, () => string][] = [
  // Each prompt with other samples: a file of one prompt repeated would answer from the memo.
  ['cmd-mixed', () => jsonl((i) => fill(KB16, (j) => `${plain(900)}${texts[(i * 17 + j) % texts.length]}\n`))],
  ['cmd-corpus', () => jsonl((i) => texts[i % texts.length]!)],
];
const root = new URL('..', import.meta.url).pathname;
for (const [name, make] of commands) {
  if (values.only !== undefined && !values.only.split(',').includes(name)) continue;
  const dir = mkdtempSync(join(tmpdir(), 'dlp-scan-'));
  try {
    const file = join(dir, `${name}.jsonl`);
    const data = make();
    writeFileSync(file, data);
    const bytes = Buffer.byteLength(data);
    const rates: number[] = [];
    for (let r = 0; r < REPEAT; r++) {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, root, file], {
        encoding: 'utf8',
      });
      rates.push(bytes / Number(out.trim()) / 1e6);
    }
    console.log(
      `  ${name.padEnd(9)} ${median(rates).toFixed(1).padStart(7)} MB/s  (min ${Math.min(...rates).toFixed(1)}, max ${Math.max(...rates).toFixed(1)}; ${(bytes / 1e6).toFixed(1)} MB of JSON lines, a fresh process per run)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
