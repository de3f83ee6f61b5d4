// Scan throughput of the default DLP ruleset, in one process, without Envoy or the gate: the
// figure the DLP issue's ≥ 50 MB/s target is about. Inputs: the generated corpus (an entity or
// near-miss every ~100 bytes), a 16 KB prompt of corpus text, prose with about one sample per KB,
// plain prose, and one large text of each (1 MiB, the size of a buffered response). Each figure
// is the median of --repeat runs in CPU time of this thread (the machine is shared), cold: the
// phone memo is cleared before every scan.
//   npm run bench:dlp-scan [-- --repeat 7] [-- --only corpus]
//   sh scripts/dev.sh node --cpu-prof --cpu-prof-dir=.cache/prof bench/dlp-scan.ts --only corpus
import { parseArgs } from 'node:util';
import { compileDlp } from '../extproc/dlp/scanner.ts';
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
