// DLP over TGI's native API through the real state machine: the prompt in `inputs`, a stream's
// token texts (an e-mail split over tokens) and the whole generated_text its last event repeats,
// which must not carry what the tokens withheld.
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/harness/dlp-test-engine.ts';
import { runStage } from '../../../test/harness/run-stage.ts';
import type { DlpAction } from './engine-port.ts';
import { dlpRequestStage } from './request-stage.ts';
import { dlpResponseStage } from './response-stage.ts';

function stages(actions: Partial<Record<string, DlpAction>>) {
  const setup = () => ({
    engine: testEngine(actions),
    options: { onScanError: 'block' as const, scanBudgetMs: 1000, response: true },
  });
  return [
    { ...dlpRequestStage(setup), always: true },
    { ...dlpResponseStage(setup), always: true },
  ];
}

const tok = (text: string, special = false) => ({ id: 1, text, logprob: -0.5, special });
const event = (o: unknown) => `data:${JSON.stringify(o)}\n\n`;
function tgiStream(pieces: string[]): string {
  const body = pieces.map((p) => event({ index: 1, token: tok(p), generated_text: null, details: null }));
  body.push(
    event({
      index: pieces.length + 1,
      token: tok('</s>', true),
      generated_text: pieces.join(''),
      details: { finish_reason: 'eos_token', generated_tokens: pieces.length + 1, input_length: 3, seed: null },
    }),
  );
  return body.join('');
}

function read(body: string) {
  const events = body
    .split('\n\n')
    .filter((b) => b.startsWith('data:'))
    .map(
      (b) =>
        JSON.parse(b.slice(5)) as {
          token?: { text: string; special: boolean };
          generated_text?: string;
          error?: string;
        },
    );
  const tokens = events.filter((e) => e.token && !e.token.special).map((e) => e.token!.text);
  return { tokens, text: tokens.join(''), last: events.at(-1)! };
}

async function generate(actions: Partial<Record<string, DlpAction>>, inputs: string, chunks: string[]) {
  return runStage({
    stages: ['llm.api_shape'],
    extraStages: stages(actions),
    request: { path: '/generate_stream', body: { inputs, parameters: { max_new_tokens: 20 } } },
    response: { headers: { 'content-type': 'text/event-stream' }, chunks },
  });
}

describe('dlp on TGI native', () => {
  it('redacts an e-mail in inputs before it goes upstream', async () => {
    const r = await generate({ EMAIL: 'redact' }, 'mail jane@x.io now', [tgiStream(['ok'])]);
    expect(JSON.parse(r.upstream!.body!).inputs).toBe('mail [REDACTED:EMAIL] now');
  });

  it('redacts an e-mail split over tokens, in the tokens and in the final generated_text', async () => {
    const r = await generate({ EMAIL: 'redact' }, 'hi', [tgiStream(['Mail jane', '.doe@exa', 'mple.com', ' now'])]);
    const got = read(r.client!.body);
    expect(got.text).toBe('Mail [REDACTED:EMAIL] now');
    for (const t of got.tokens) expect(t).not.toMatch(/jane|doe|exa|mple/);
    expect(got.last.generated_text).toBe('Mail [REDACTED:EMAIL] now');
    expect(r.client!.body).not.toMatch(/jane|doe@/);
  });

  it('restores its own pseudonyms in tokens and generated_text alike', async () => {
    const r = await generate({ EMAIL: 'pseudonymise' }, 'write to jane@x.io', [
      tgiStream(['Sent to [EMA', 'IL_1]', ' today']),
    ]);
    expect(JSON.parse(r.upstream!.body!).inputs).toBe('write to [EMAIL_1]');
    const got = read(r.client!.body);
    expect(got.text).toBe('Sent to jane@x.io today');
    expect(got.last.generated_text).toBe('Sent to jane@x.io today');
  });

  it('a block ends the stream with an error event TGI clients raise', async () => {
    const r = await generate({ AWS_ACCESS_KEY: 'block' }, 'hi', [tgiStream(['key AKIAABCD', 'EFGHIJKLMNOP', ' x'])]);
    const got = read(r.client!.body);
    expect(got.last.error).toBeTypeOf('string');
    expect(r.client!.body).not.toContain('AKIA');
    expect(r.audit).toMatchObject({ outcome: 'rejected', error: { code: 'content_blocked' } });
  });
});

describe('dlp on TGI native JSON answers', () => {
  const answer = (details: boolean) =>
    JSON.stringify({
      generated_text: 'Mail jane.doe@example.com now',
      ...(details
        ? {
            details: {
              finish_reason: 'length',
              generated_tokens: 4,
              seed: null,
              prefill: [],
              tokens: ['Mail jane', '.doe@exa', 'mple.com', ' now'].map((text, id) => ({
                id,
                text,
                logprob: -1,
                special: false,
              })),
            },
          }
        : {}),
    });
  const run = (details: boolean) =>
    runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/generate', body: { inputs: 'hi', parameters: { details } } },
      response: { headers: { 'content-type': 'application/json' }, chunks: [answer(details)] },
    });

  it('redacts generated_text', async () => {
    const r = await run(false);
    expect(JSON.parse(r.client!.body).generated_text).toBe('Mail [REDACTED:EMAIL] now');
  });

  it('refuses an answer whose per-token details would rebuild what was redacted', async () => {
    const r = await run(true);
    expect(r.refused).toMatchObject({ code: 'content_blocked', ruleId: 'dlp.token_details' });
    expect(r.client?.body ?? '').not.toContain('doe');
  });
});
