// npm run eval:dlp — precision and recall per finding type of the default DLP policy over the
// generated corpus (test/dlp/corpus.ts), then scan throughput: MB/s over the corpus, on a 16 KB
// prompt, and the cost per KB. Options: --seed N, --size N, --misses (print what was missed or
// wrongly found, with the text around it: the corpus is synthetic, so this is safe to print).
import { parseArgs } from 'node:util';
import { compileDlp } from '../../extproc/dlp/compile.ts';
import { generateCorpus } from './corpus.ts';
import { evaluate, VALIDATED } from './evaluate.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '13' },
    size: { type: 'string', default: '3000' },
    misses: { type: 'boolean' },
  },
});
const corpus = generateCorpus(Number(values.seed), Number(values.size));
const scanner = compileDlp({ name: 'default' });
const { scores, misses } = evaluate(scanner, corpus);

const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(7);
console.log(`DLP evaluation: ${corpus.length} samples (seed ${values.seed}), default policy\n`);
console.log(
  `${'type'.padEnd(18)} ${'labels'.padStart(6)} ${'tp'.padStart(5)} ${'fp'.padStart(4)} ${'fn'.padStart(4)} ${'precision'.padStart(9)} ${'recall'.padStart(7)}  bar`,
);
let failed = false;
for (const s of scores) {
  const validated = VALIDATED.includes(s.type);
  const ok = s.precision >= 0.98 && s.recall >= 0.99;
  if (validated && !ok) failed = true;
  console.log(
    `${s.type.padEnd(18)} ${String(s.tp + s.fn).padStart(6)} ${String(s.tp).padStart(5)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)} ${pct(s.precision).padStart(9)} ${pct(s.recall)}  ${validated ? (ok ? 'meets P≥98% R≥99%' : 'BELOW P≥98% R≥99%') : '(not validator-backed: reported)'}`,
  );
}
if (values.misses) for (const m of misses) console.log(`${m.kind} ${m.type} ${m.id}: ${JSON.stringify(m.excerpt)}`);

// Throughput, in CPU time of this thread (user + system), so that other processes on a busy
// machine do not count against the scanner; bytes are UTF-8 bytes of the texts scanned.
function mbps(texts: string[], rounds: number): { mbps: number; usPerKb: number } {
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  for (const t of texts) scanner.scan(t); // warm up
  const before = process.cpuUsage();
  // Cold: no validator answer carried over from an earlier scan of the same text.
  for (let r = 0; r < rounds; r++)
    for (const t of texts) {
      scanner.clearMemo();
      scanner.scan(t);
    }
  const used = process.cpuUsage(before);
  const s = (used.user + used.system) / 1e6;
  return { mbps: (bytes * rounds) / s / 1e6, usPerKb: (s * 1e6) / ((bytes * rounds) / 1024) };
}
const texts = corpus.map((c) => c.text);
const corpusBytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
let prompt = '';
for (let i = 0; Buffer.byteLength(prompt) < 16 * 1024; i++) prompt += `${texts[i % texts.length]}\n`;
prompt = prompt.slice(0, 16 * 1024);
let plain = '';
while (plain.length < 16 * 1024)
  plain += 'The quarterly report shows steady growth across all regions, with costs under control. ';
plain = plain.slice(0, 16 * 1024);
// Prose with about one entity or near-miss per KB: a long prompt with some personal data in it.
let mixed = '';
for (let i = 0; mixed.length < 16 * 1024; i++) mixed += `${plain.slice(0, 900)}${texts[i]}\n`;
mixed = mixed.slice(0, 16 * 1024);
const whole = mbps(texts, 5);
const p16 = mbps([prompt], 300);
const plain16 = mbps([plain], 300);
console.log(`\nthroughput (default ruleset, one thread, CPU time, ${process.version}):`);
console.log(
  `  corpus (${(corpusBytes / 1e6).toFixed(2)} MB in ${texts.length} texts): ${whole.mbps.toFixed(1)} MB/s, ${whole.usPerKb.toFixed(1)} µs per KB`,
);
console.log(
  `  16 KB prompt of corpus text:        ${p16.mbps.toFixed(1)} MB/s, ${p16.usPerKb.toFixed(1)} µs per KB, ${((16 * p16.usPerKb) / 1000).toFixed(2)} ms per prompt`,
);
const mixed16 = mbps([mixed], 300);
console.log(
  `  16 KB prompt, prose + ~1 sample/KB:  ${mixed16.mbps.toFixed(1)} MB/s, ${mixed16.usPerKb.toFixed(1)} µs per KB, ${((16 * mixed16.usPerKb) / 1000).toFixed(2)} ms per prompt`,
);
console.log(
  `  16 KB prompt of plain prose:        ${plain16.mbps.toFixed(1)} MB/s, ${plain16.usPerKb.toFixed(1)} µs per KB, ${((16 * plain16.usPerKb) / 1000).toFixed(2)} ms per prompt`,
);
// Streams: the mixed prompt as a response arriving in pieces, through a DlpStream.
for (const size of [4, 16, 64]) {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    scanner.clearMemo();
    const before = process.cpuUsage();
    const stream = scanner.stream();
    for (let i = 0; i < mixed.length; i += size) stream.push(mixed.slice(i, i + size));
    stream.end();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  const pieces = Math.ceil(mixed.length / size);
  console.log(
    `  16 KB streamed in ${String(size).padStart(2)}-char pieces:    ${((best * 1000) / pieces).toFixed(1)} µs per piece, ${best.toFixed(1)} ms in all (best of 5)`,
  );
}
process.exitCode = failed ? 1 : 0;
