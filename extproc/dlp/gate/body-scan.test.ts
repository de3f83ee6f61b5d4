import { describe, expect, it } from 'vitest';
import { applyBodyEdits } from '../../llm/body-edits.ts';
import { compileDlp } from '../compile.ts';
import { applyHits, collectHits } from './body-scan.ts';
import { engineOf } from './engine.ts';

// Card numbers that pass Luhn, each distinct in its last four digits.
const CARDS = ['4111 1111 1111 1111', '4012 8888 8888 1881', '5555 5555 5555 4444', '5105 1051 0510 5100'];

function run(body: Buffer, detectors: Record<string, string>, keepTexts: boolean) {
  const engine = engineOf(compileDlp({ name: 'p', detectors }));
  const hits = collectHits(body, 0, engine.scanner, { skipModel: true, budgetMs: Infinity, keepTexts });
  const scan = applyHits(body, hits, engine.newSession(), 'request', undefined);
  return { scan, text: JSON.parse(applyBodyEdits(body, scan.edits).toString()) as { messages: { content: string }[] } };
}

describe('applyHits on a request body', () => {
  // More distinct replacements than the per-body encoding memo keeps (8), repeated, in strings
  // with escapes: every splice must carry its own finding's replacement.
  const contents = Array.from({ length: 12 }, (_, i) => `"card"\n${CARDS[i % 4]} for ${i}@example.com`);
  const body = Buffer.from(
    JSON.stringify({ model: 'm', messages: contents.map((content) => ({ role: 'user', content })) }),
  );

  it.each([true, false])('masks and redacts each value in place (decoded on the scanning thread: %s)', (keep) => {
    const { scan, text } = run(body, { CREDIT_CARD: 'mask', EMAIL: 'redact' }, keep);
    expect(scan.findings).toHaveLength(24);
    expect(text.messages.map((m) => m.content)).toEqual(
      contents.map((_, i) => `"card"\n**** **** **** ${CARDS[i % 4]!.slice(-4)} for [REDACTED:EMAIL]`),
    );
  });

  it('pseudonymises twelve distinct addresses with twelve placeholders', () => {
    const { text } = run(body, { CREDIT_CARD: 'redact', EMAIL: 'pseudonymise' }, true);
    expect(text.messages.map((m) => m.content)).toEqual(
      contents.map((_, i) => `"card"\n[REDACTED:CREDIT_CARD] for [EMAIL_${i + 1}]`),
    );
  });
});
