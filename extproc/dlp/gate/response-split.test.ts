// The split fuzz of issue #13 below Envoy, with the real engine over the dlp-engine corpus: for
// every stream and every split position, the text the client has received after each piece is a
// prefix of the whole text with its findings replaced (so no byte of a match was ever released
// before its match was decided), and the joined output equals it. The same through the real
// state machine, for SSE bytes cut anywhere (inside UTF-8 characters and SSE lines), for a
// sample. test/e2e/dlp.test.ts runs a subset through real Envoy and the openai client.
import { describe, expect, it } from 'vitest';
import { generateCorpus } from '../../../test/dlp/corpus.ts';
import { runStage } from '../../../test/harness/run-stage.ts';
import { compileDlp } from '../compile.ts';
import { engineOf } from './engine.ts';
import { dlpRequestStage } from './request-stage.ts';
import { dlpResponseStage } from './response-stage.ts';
import { StreamGuard } from './stream-guard.ts';

const POLICY = { name: 'default', detectors: { EMAIL: 'pseudonymise' as const, PHONE: 'mask' as const } };
const engine = engineOf(compileDlp(POLICY));
const corpus = generateCorpus();
// Every sample with something to find, and a share of the near-misses (which must pass as is).
const samples = corpus.filter((s, i) => s.labels.length > 0 || i % 5 === 0);

/** Push `pieces` through one guard; the released text after each piece, and the findings. */
function guard(pieces: string[]): { released: string[]; blocked: boolean } {
  const g = new StreamGuard(engine.scanner, engine.newSession(), () => {});
  const released: string[] = [];
  let sent = '';
  for (const p of pieces) {
    const r = g.push(p);
    if (r.blocked) return { released, blocked: true };
    sent += r.text;
    released.push(sent);
  }
  const last = g.flush();
  if (last.blocked) return { released, blocked: true };
  released.push(sent + last.text);
  return { released, blocked: false };
}

/** What any split must give for `text`: whether it is blocked, and the redacted text every
 * release must be a prefix of (up to the first block finding when blocked, where the stream
 * ends; the whole redacted text otherwise, which the joined output must equal). */
function oracle(text: string): { blocked: boolean; bound: string } {
  const block = engine.scanner.scan(text).find((f) => f.action === 'block');
  if (block === undefined) return { blocked: false, bound: guard([text]).released.at(-1) ?? '' };
  return { blocked: true, bound: guard([text.slice(0, block.start)]).released.at(-1) ?? '' };
}

describe('the hold-back over the corpus, every split', () => {
  it(`${samples.length} texts, every two-piece split (near-misses: every 7th): each release is a prefix of the redacted whole`, () => {
    let splits = 0;
    for (const s of samples) {
      const want = oracle(s.text);
      const cps = Array.from(s.text);
      // Every split where there is something to find; every 7th in the near-misses.
      const stride = s.labels.length > 0 ? 1 : 7;
      for (let i = 1; i < cps.length; i += stride) {
        const r = guard([cps.slice(0, i).join(''), cps.slice(i).join('')]);
        splits++;
        // A block may be decided sooner or later, never a different verdict.
        expect(r.blocked, s.id).toBe(want.blocked);
        for (const sent of r.released)
          if (!want.bound.startsWith(sent))
            expect.fail(`${s.id} split ${i}: released ${JSON.stringify(sent.slice(-40))}`);
        if (!r.blocked) expect(r.released.at(-1), `${s.id} split ${i}`).toBe(want.bound);
      }
    }
    expect(splits).toBeGreaterThan(100_000);
  }, 120_000);

  // A date of birth whose keyword straddles an earlier decided offset ("…Date " | "of birth 1 O"
  // | "ctober 1980"): an engine that looked for DOB keywords only from the decided offset on
  // released "1 " and never found the date.
  it('a DOB keyword cut by an earlier decided offset', () => {
    const text = 'Intake form for the claim. Also, Date of birth 1 October 1980, per the clinic letter.';
    const at = text.indexOf('of birth');
    const want = oracle(text);
    expect(want.bound).not.toContain('1 October 1980');
    for (const cut2 of [at + 10, at + 11, at + 12, at + 14]) {
      const r = guard([text.slice(0, at), text.slice(at, cut2), text.slice(cut2)]);
      for (const sent of r.released) expect(want.bound.startsWith(sent), `cut at ${at}/${cut2}`).toBe(true);
      expect(r.released.at(-1)).toBe(want.bound);
    }
  });

  it('three-piece splits, and splits inside surrogate pairs, for the texts with findings', () => {
    for (const s of samples.filter((x) => x.labels.length > 0).slice(0, 60)) {
      const want = oracle(s.text);
      for (let i = 1; i < s.text.length; i += 3)
        for (let j = i + 1; j < s.text.length; j += 11) {
          const r = guard([s.text.slice(0, i), s.text.slice(i, j), s.text.slice(j)]);
          expect(r.blocked).toBe(want.blocked);
          for (const sent of r.released) if (!want.bound.startsWith(sent)) expect.fail(`${s.id} ${i}/${j}`);
          if (!want.blocked) expect(r.released.at(-1)).toBe(want.bound);
        }
    }
  }, 120_000);
});

describe('through the state machine: SSE bytes cut anywhere', () => {
  const setup = () => ({ engine, options: { onScanError: 'block' as const, scanBudgetMs: 1000, response: true } });
  const stages = [
    { ...dlpRequestStage(setup), always: true },
    { ...dlpResponseStage(setup), always: true },
  ];
  const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
  const delta = (content: string, finish: string | null = null) => ({
    id: 'c',
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  });
  const text = (body: string) =>
    body
      .split('\n\n')
      .filter((b) => b.startsWith('data: {'))
      .map((b) => JSON.parse(b.slice(6)))
      .map((o) => (o.error ? '\u0000ERROR' : (o.choices?.[0]?.delta?.content ?? '')))
      .join('');

  const nonAscii = (t: string) => Array.from(t).some((c) => c.charCodeAt(0) > 0x7f);
  const picked = samples.filter((s) => s.labels.length > 0 && nonAscii(s.text)).slice(0, 12);
  for (const s of picked) {
    it(`${s.id}: the client's joined text is the same for every byte split`, async () => {
      const cps = Array.from(s.text);
      const pieces: string[] = [];
      for (let i = 0, n = 3; i < cps.length; i += n, n = (n % 7) + 2) pieces.push(cps.slice(i, i + n).join(''));
      const bytes = Buffer.from(
        `${pieces.map((p) => sse(delta(p))).join('')}${sse(delta('', 'stop'))}data: [DONE]\n\n`,
      );
      const run = (chunks: Buffer[]) =>
        runStage({
          stages: ['llm.api_shape'],
          extraStages: stages,
          request: {
            path: '/v1/chat/completions',
            body: { model: 'm', stream: true, messages: [{ role: 'user', content: 'go' }] },
          },
          response: { headers: { 'content-type': 'text/event-stream' }, chunks },
        });
      const want = oracle(s.text);
      for (let cut = 0; cut < bytes.length; cut += 17) {
        const chunks = cut === 0 ? [bytes] : [bytes.subarray(0, cut), bytes.subarray(cut)];
        const got = text((await run(chunks)).client!.body);
        if (want.blocked) {
          // Text released before the block, then the error event, then nothing.
          expect(got.endsWith('\u0000ERROR'), `cut at ${cut}`).toBe(true);
          expect(want.bound.startsWith(got.slice(0, -6)), `cut at ${cut}`).toBe(true);
        } else expect(got, `cut at ${cut}`).toBe(want.bound);
      }
    });
  }
});
