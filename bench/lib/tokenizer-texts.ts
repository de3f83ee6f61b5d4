// The texts bench/tokenizer.ts counts, built deterministically (a seeded generator, or this
// repository's own source) so every run counts the same bytes. Each kind stresses the BPE
// differently: prose is mostly whole-word tokens, code and JSON are punctuation-heavy short
// chunks, CJK is 3 bytes a character in long chunks, base64 is chunks never seen twice.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rng } from '../../test/dlp/corpus.ts';

export const TEXT_KINDS = ['prose', 'code', 'json', 'cjk', 'base64'] as const;
export type TextKind = (typeof TEXT_KINDS)[number];

const WORDS = `the of and to in a is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no will more
about can said up out them some could what into than then other only its time two may these new
like first any my now such our over also did even most made after many before must through back
years where much your way well down should because each just those people how too little state good
very make world still own see men work long get here between both life being under never day same
another know while last might us great old year off come since against go came right used take
three report growth region costs quarterly customer service network latency request budget model
answer question policy review contract team market product design engineering data system users
security access version release support feature document meeting project schedule deadline summary
analysis result evidence history science weather river mountain city village garden kitchen window
morning evening winter summer autumn spring journey letter story family friend teacher student doctor
quickly slowly carefully clearly however therefore although unless whether almost perhaps usually`.split(/\s+/);

// Real prose is not only common words (each one token, found without a merge): names, numbers and
// longer derived words need the BPE merges. About one word in six here is such a word, built from
// parts (re + structur + ation), so a text's rarer chunks are mostly new to the merge cache.
const PREFIXES = ['', '', 'un', 're', 'pre', 'inter', 'over', 'counter', 'sub', 'trans', 'micro', 'de'];
const ROOTS = `config structur align form medic log graph port spect struct vers duct ject scrib cept tract
  mit pend sens rupt volv flect gress cred dict fer mot press quir rect sequ sign tain termin vent`.split(/\s+/);
const SUFFIXES = ['ation', 'ing', 'ed', 'ity', 'ness', 'ally', 'ize', 'able', 'ive', 'ologist', 'ments'];
const NAMES = ['Okonkwo', 'Fitzgerald', 'Nakamura', 'Vasquez', 'Lindqvist', 'Abernathy', 'Kowalczyk'];

function rareWord(rnd: () => number): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const r = rnd();
  if (r < 0.15) return pick(NAMES);
  if (r < 0.3) return (Math.floor(rnd() * 1e5) / (rnd() < 0.5 ? 1 : 100)).toLocaleString('en-US');
  return pick(PREFIXES) + pick(ROOTS).trim() + pick(SUFFIXES);
}

function prose(size: number, rnd: () => number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const len = 8 + Math.floor(rnd() * 14);
    const words: string[] = [];
    for (let i = 0; i < len; i++) {
      let w = rnd() < 0.16 ? rareWord(rnd) : WORDS[Math.floor(rnd() * WORDS.length)]!;
      if (i === 0) w = w[0]!.toUpperCase() + w.slice(1);
      else if (rnd() < 0.08) w += ',';
      words.push(w);
    }
    const s = `${words.join(' ')}${rnd() < 0.1 ? '?' : '.'}${rnd() < 0.15 ? '\n\n' : ' '}`;
    parts.push(s);
    n += s.length;
  }
  return parts.join('');
}

/** This repository's TypeScript sources, in a fixed order, as many as the size needs. */
function code(size: number): string {
  const root = join(import.meta.dirname, '..', '..', 'extproc');
  const files = (readdirSync(root, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort();
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const t = readFileSync(join(root, files[i % files.length]!), 'utf8');
    parts.push(t);
    n += t.length;
  }
  return parts.join('');
}

/** Records as a tool result or a structured answer carries them. */
function json(size: number, rnd: () => number): string {
  const records: unknown[] = [];
  let n = 0;
  const word = () => WORDS[Math.floor(rnd() * WORDS.length)]!;
  for (let i = 0; n < size; i++) {
    const r = {
      id: `ord_${Math.floor(rnd() * 2 ** 40).toString(36)}`,
      customer: { name: `${word()} ${word()}`, email: `${word()}.${word()}@example.com`, tier: i % 3 },
      amount: Math.round(rnd() * 1e6) / 100,
      currency: rnd() < 0.7 ? 'EUR' : 'USD',
      created: new Date(1.7e12 + Math.floor(rnd() * 3e10)).toISOString(),
      tags: [word(), word()],
      note: `${word()} ${word()} ${word()} ${word()}`,
    };
    const t = JSON.stringify(r, null, 2);
    records.push(r);
    n += t.length + 2;
  }
  return JSON.stringify(records, null, 2);
}

/** About 500 of the most frequent Chinese characters. */
const HANZI = [
  ...'的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴',
];

/** Clauses of frequent characters (weighted to the most frequent): the tokenizer splits CJK at
 * punctuation, so each clause is a chunk, and clauses of real text rarely repeat either. */
function cjk(size: number, rnd: () => number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const len = 4 + Math.floor(rnd() * 16);
    let clause = '';
    for (let i = 0; i < len; i++) clause += HANZI[Math.floor(rnd() * rnd() * HANZI.length)]!;
    const end = rnd() < 0.7 ? '，' : rnd() < 0.9 ? '。' : '。\n';
    parts.push(clause + end);
    n += (len + 1) * 3;
  }
  return parts.join('');
}

/** Random bytes in base64: an inlined file or image, chunks the merge cache never sees twice. */
function base64(size: number, rnd: () => number): string {
  const bytes = Buffer.alloc(Math.ceil((size * 3) / 4) + 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
  return bytes.toString('base64');
}

/** `size` bytes of UTF-8 at most (never a split character), of the given kind. */
export function makeText(kind: TextKind, size: number, seed = 7): string {
  const rnd = rng(seed);
  const whole =
    kind === 'prose'
      ? prose(size, rnd)
      : kind === 'code'
        ? code(size)
        : kind === 'json'
          ? json(size, rnd)
          : kind === 'cjk'
            ? cjk(size, rnd)
            : base64(size, rnd);
  // Cut at the byte size; a character split by the cut decodes to U+FFFD, dropped.
  return Buffer.from(whole, 'utf8')
    .subarray(0, size)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}
