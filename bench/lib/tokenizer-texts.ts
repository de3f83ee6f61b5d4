// The texts bench/tokenizer.ts counts, built deterministically (a seeded generator, or this
// repository's own source) so every run counts the same bytes. Each kind stresses the BPE
// differently: prose is long common words, code and JSON are punctuation-heavy short chunks,
// CJK is 3 bytes a character with few merges, base64 is chunks never seen twice.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const TEXT_KINDS = ['prose', 'code', 'json', 'cjk', 'base64'] as const;
export type TextKind = (typeof TEXT_KINDS)[number];

/** mulberry32: a small seeded generator, enough to vary word choice. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

function prose(size: number, rnd: () => number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const len = 8 + Math.floor(rnd() * 14);
    const words: string[] = [];
    for (let i = 0; i < len; i++) {
      let w = WORDS[Math.floor(rnd() * WORDS.length)]!;
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

const CJK_SENTENCES = [
  '本季度报告显示各地区业务稳步增长，成本控制良好。',
  '我们计划在下个月发布新版本，并改进用户的访问体验。',
  '请在会议之前审阅合同草案，并把意见发给项目团队。',
  '数据分析的结果表明，网络延迟主要来自上游服务。',
  '这个城市的冬天很冷，但是春天来得很早，花园里开满了花。',
  '老师告诉学生们，科学研究需要耐心和仔细的观察。',
  '安全策略要求每个请求都必须经过身份验证和审计。',
  '东京的天气预报说明天会下雨，请记得带伞。',
  '模型的回答应该简洁明了，并且引用可靠的证据。',
  'このシステムはすべての要求を記録し、利用者ごとに上限を適用します。',
  '회의 일정은 다음 주 화요일 오전으로 변경되었습니다。',
  '他们沿着河边走了很久，一直走到山脚下的小村庄。',
];

function cjk(size: number, rnd: () => number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const s = CJK_SENTENCES[Math.floor(rnd() * CJK_SENTENCES.length)]! + (rnd() < 0.15 ? '\n' : '');
    parts.push(s);
    n += Buffer.byteLength(s);
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
  const rnd = random(seed);
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
