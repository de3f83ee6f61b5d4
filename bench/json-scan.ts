// Worst-case request bodies for the gate's JSON scan (extproc/llm/json-scan.ts via
// parseRequestBody). Two tables:
//   1. each body at 4 MiB (Envoy's default request buffer): scan and parse time, MB/s, and
//      JSON.parse's time on the same bytes for comparison;
//   2. the same bodies at small sizes: the slowest parse per size, which sets
//      INLINE_PARSE_MAX_BYTES (extproc/llm/parse-pool.ts): bodies up to it are parsed on the
//      event loop, and should cost it no more than about 1 ms.
//   sh scripts/dev.sh node bench/json-scan.ts [--size BYTES] [--runs N] [--small-runs N]
import { parseArgs } from 'node:util';
import { scanJson } from '../extproc/llm/json-scan.ts';
import { INLINE_PARSE_MAX_BYTES } from '../extproc/llm/parse-pool.ts';
import { DEFAULT_MAX_JSON_DEPTH, parseRequestBody } from '../extproc/llm/shapes.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: String(4 * 1024 * 1024) },
    runs: { type: 'string', default: '7' },
    'small-runs': { type: 'string', default: '400' },
  },
});
const SIZE = Number(values.size);
const RUNS = Number(values.runs);
const SMALL_RUNS = Number(values['small-runs']);
const limits = { maxDepth: DEFAULT_MAX_JSON_DEPTH };

const bytes = (s: string): number => Buffer.byteLength(s);
const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** The bodies, each about `size` bytes. Keys made distinct per body depend on `salt`, so that
 * timing different salts measures keys never seen before (a key cache does not help). */
function bodies(size: number, salt = 0): [string, Buffer][] {
  const head = '{"model":"m","messages":[';
  const tail = ']}';
  /** `{"model":"m","messages":[item,item,…]}` filled up to `size` bytes. */
  const fill = (item: string): Buffer => {
    const n = Math.max(1, Math.floor((size - head.length - tail.length) / (bytes(item) + 1)));
    return Buffer.from(head + new Array(n).fill(item).join(',') + tail);
  };
  /** `unit` repeated to fill `size` bytes. */
  const rep = (unit: string, room = 40): string => unit.repeat(Math.max(1, Math.floor((size - room) / bytes(unit))));
  /** One object with distinct keys made by `key(i)`. */
  const distinct = (key: (i: number) => string): Buffer => {
    const members: string[] = [];
    let n = 30;
    for (let i = salt * 100_000; n < size; i++) {
      const m = `"${key(i)}":1`;
      members.push(m);
      n += bytes(m) + 1;
    }
    return Buffer.from(`{"model":"m","messages":[],${members.join(',')}}`);
  };
  const chat = JSON.stringify({ role: 'user', content: 'Summarise the following text in two sentences, please.' });
  return [
    ['typical chat messages (reference)', fill(chat)],
    // The root object and `messages` take two levels: 62 more reach the limit of 64.
    ['nested arrays at the depth limit', fill(nested(DEFAULT_MAX_JSON_DEPTH - 2))],
    [
      'nested objects at the depth limit',
      fill(`${'{"a":'.repeat(DEFAULT_MAX_JSON_DEPTH - 3)}{}${'}'.repeat(DEFAULT_MAX_JSON_DEPTH - 3)}`),
    ],
    ['tiny objects, 1 key', fill('{"a":1}')],
    ['tiny objects, 2 keys', fill('{"a":1,"b":2}')],
    ['objects, 9 one-letter keys', fill(`{${'abcdefghi'.replace(/./g, '"$&":1,').slice(0, -1)}}`)],
    ['objects, 17 one-letter keys', fill(`{${'abcdefghijklmnopq'.replace(/./g, '"$&":1,').slice(0, -1)}}`)],
    ['tiny objects, escaped key', fill('{"\\u0061":1}')],
    ['tiny objects, non-ASCII key', fill('{"é":1}')],
    ['tiny objects, cased non-ASCII keys', fill('{"Ω":1,"ж":2}')],
    ['tiny objects, 40-byte ASCII key', fill(`{"${'K'.repeat(40)}":1}`)],
    ['tiny objects, 42-byte escaped key', fill(`{"${'\\u004b'.repeat(7)}":1}`)],
    ['tiny objects, 40-byte Greek key', fill(`{"${'Ωω'.repeat(10)}":1}`)],
    ['tiny objects, 80-byte Greek key', fill(`{"${'Ωω'.repeat(20)}":1}`)],
    ['one object, distinct keys', distinct((i) => `k${i}`)],
    ['one object, distinct Greek keys', distinct((i) => `ΩΣ${i.toString(36)}ω`)],
    ['one object, distinct 40-byte keys', distinct((i) => `${i}`.padStart(40, 'K'))],
    ['long string, escapes', fill(`"${rep('\\n\\"\\u00e9\\ud83d\\ude00')}"`)],
    ['long string, multibyte', fill(`"${rep('é中😀')}"`)],
    ['long string, ASCII', fill(`"${rep('a')}"`)],
    ['empty strings', fill('""')],
    ['number array, 1 digit', fill('1')],
    ['number array, floats', fill('-1.25e-3')],
    ['number array, long integers', fill('12345678901234567890')],
    ['literals', fill('true,null,false')],
    ['whitespace', fill(`${' '.repeat(1000)}1`)],
  ];
}

function timeMs(fn: (run: number) => unknown, runs: number): number[] {
  const t: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    fn(r);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t.sort((a, b) => a - b);
}
const median = (t: number[]): number => t[Math.floor(t.length / 2)]!;
const p99 = (t: number[]): number => t[Math.min(t.length - 1, Math.floor(t.length * 0.99))]!;

console.log(`Node ${process.version}; ${SIZE} bytes; median of ${RUNS} runs`);
console.log(
  `${'body'.padEnd(36)} ${'bytes'.padStart(8)} ${'scan ms'.padStart(8)} ${'parse ms'.padStart(9)} ${'MB/s'.padStart(6)} ${'JSON.parse ms'.padStart(14)}  result`,
);
const big: [string, Buffer][] = [
  ...bodies(SIZE),
  ['20,000 deep', Buffer.from(`{"model":"m","messages":${nested(20_000)}}`)],
  ['2 Mi deep', Buffer.from(`{"model":"m","messages":${nested(SIZE / 2)}}`)],
];
let slowest = Number.POSITIVE_INFINITY;
for (const [name, body] of big) {
  const result = parseRequestBody('openai.chat', body, limits);
  const scanMs = median(timeMs(() => scanJson(body, limits), RUNS));
  const parseMs = median(timeMs(() => parseRequestBody('openai.chat', body, limits), RUNS));
  let json = '';
  try {
    json = median(timeMs(() => JSON.parse(body.toString()), RUNS)).toFixed(2);
  } catch (e) {
    json = (e as Error).name;
  }
  const mbs = body.length / 1e3 / parseMs;
  if (result.ok) slowest = Math.min(slowest, mbs);
  console.log(
    `${name.padEnd(36)} ${String(body.length).padStart(8)} ${scanMs.toFixed(2).padStart(8)} ${parseMs.toFixed(2).padStart(9)} ${mbs.toFixed(0).padStart(6)} ${json.padStart(14)}  ${result.ok ? 'ok' : result.code}`,
  );
}
console.log(`slowest accepted body: ${slowest.toFixed(0)} MB/s`);

console.log(
  `\nsmall bodies, ${SMALL_RUNS} runs each, distinct keys fresh each run: the slowest body per size (INLINE_PARSE_MAX_BYTES = ${INLINE_PARSE_MAX_BYTES})`,
);
console.log(`${'size'.padStart(7)} ${'median ms'.padStart(10)} ${'p99 ms'.padStart(8)}  slowest body (by median)`);
const VARIANTS = 64;
for (const size of [4096, 8192, 16384, 24576, 32768, 49152, 65536]) {
  const variants = Array.from({ length: VARIANTS }, (_, salt) => bodies(size, salt + 1));
  let worst = { name: '', median: 0, p99: 0 };
  for (let b = 0; b < variants[0]!.length; b++) {
    const name = variants[0]![b]![0];
    const parse = (run: number) => parseRequestBody('openai.chat', variants[run % VARIANTS]![b]![1], limits);
    timeMs(parse, VARIANTS);
    const t = timeMs(parse, SMALL_RUNS);
    if (median(t) > worst.median) worst = { name, median: median(t), p99: p99(t) };
  }
  console.log(
    `${String(size).padStart(7)} ${worst.median.toFixed(3).padStart(10)} ${worst.p99.toFixed(3).padStart(8)}  ${worst.name}`,
  );
}
