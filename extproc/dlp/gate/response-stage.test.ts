// dlp.response through the real state machine (runStage): streamed and JSON responses, with the
// request stage's pseudonyms restored, blocks ending the stream, and the hold-back invariant for
// every split of the upstream bytes.
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/harness/dlp-test-engine.ts';
import { runStage } from '../../../test/harness/run-stage.ts';
import type { DlpAction } from './engine-port.ts';
import { dlpRequestStage } from './request-stage.ts';
import { dlpResponseStage } from './response-stage.ts';

type Actions = Partial<Record<string, DlpAction>>;

function stages(actions: Actions) {
  const setup = () => ({
    engine: testEngine(actions),
    options: { onScanError: 'block' as const, scanBudgetMs: 1000, response: true },
  });
  return [
    { ...dlpRequestStage(setup), always: true },
    { ...dlpResponseStage(setup), always: true },
  ];
}

const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const delta = (content: string, finish: string | null = null) => ({
  id: 'c',
  object: 'chat.completion.chunk',
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: finish }],
});
const SSE = { 'content-type': 'text/event-stream' };

/** An upstream stream that sends `pieces` as deltas, then a finish event and [DONE]. */
function stream(pieces: string[]): string {
  return `${pieces.map((p) => sse(delta(p))).join('')}${sse(delta('', 'stop'))}data: [DONE]\n\n`;
}

/** The client's view of an SSE body: the content it joined, and the error event if any. */
function read(body: string): { text: string; deltas: string[]; error?: { code: string }; after: number } {
  const deltas: string[] = [];
  let error: { code: string } | undefined;
  let after = 0;
  for (const block of body.split('\n\n')) {
    const data = block.startsWith('data: ') ? block.slice(6) : undefined;
    if (data === undefined || data === '[DONE]') {
      if (error && data === '[DONE]') after++;
      continue;
    }
    const o = JSON.parse(data);
    if (error) after++;
    if (o.error) error = o.error;
    for (const c of o.choices ?? []) if (typeof c.delta?.content === 'string') deltas.push(c.delta.content);
  }
  return { text: deltas.join(''), deltas, error, after };
}

async function chat(
  actions: Actions,
  prompt: string,
  chunks: (string | Buffer)[],
  headers: Record<string, string> = SSE,
) {
  return runStage({
    stages: ['llm.api_shape'],
    extraStages: stages(actions),
    request: {
      path: '/v1/chat/completions',
      body: { model: 'm', stream: true, messages: [{ role: 'user', content: prompt }] },
    },
    response: { headers, chunks },
  });
}

describe('dlp.response on streams', () => {
  it('redacts an e-mail split over deltas without releasing any part of it', async () => {
    const r = await chat({ EMAIL: 'redact' }, 'hi', [stream(['Mail jane', '.doe@exa', 'mple.com', ' now'])]);
    const got = read(r.client!.body);
    expect(got.text).toBe('Mail [REDACTED:EMAIL] now');
    for (const d of got.deltas) expect(d).not.toMatch(/jane|doe|exa|mple/);
    expect(r.audit.dlp?.findings).toEqual([
      { type: 'EMAIL', action: 'redact', where: 'response', path: 'choices[0].content', start: 5, end: 25 },
    ]);
  });

  it('releases what it holds before [DONE] when upstream never says finish_reason', async () => {
    const body = `${['Mail jane', '.doe@exa', 'mple.com now'].map((p) => sse(delta(p))).join('')}data: [DONE]\n\n`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    const got = read(r.client!.body);
    expect(got.text).toBe('Mail [REDACTED:EMAIL] now');
    expect(r.client!.body.endsWith('data: [DONE]\n\n')).toBe(true);
    const completion = `${['x ', 'a@b.io'].map((t) => sse({ object: 'text_completion', choices: [{ index: 0, text: t, finish_reason: null }] })).join('')}data: [DONE]\n\n`;
    const c = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/completions', body: { model: 'm', stream: true, prompt: 'p' } },
      response: { headers: SSE, chunks: [completion] },
    });
    const texts = c
      .client!.body.split('\n\n')
      .filter((b) => b.startsWith('data: {'))
      .map((b) => JSON.parse(b.slice(6)).choices[0].text);
    expect(texts.join('')).toBe('x [REDACTED:EMAIL]');
  });

  it('restores the placeholders it gave the request, also split over deltas, and only those', async () => {
    const r = await chat({ EMAIL: 'pseudonymise' }, 'write to jane@x.io, not [EMAIL_1]', [
      stream(['Sent to [EMA', 'IL_2]; ', '[EMAIL_1] is what you typed']),
    ]);
    // The user typed [EMAIL_1], so the real address got [EMAIL_2].
    expect(JSON.parse(r.upstream!.body!).messages[0].content).toBe('write to [EMAIL_2], not [EMAIL_1]');
    expect(read(r.client!.body).text).toBe('Sent to jane@x.io; [EMAIL_1] is what you typed');
  });

  it('ends the stream with an OpenAI error event at a block, and sends nothing after it', async () => {
    const r = await chat({ AWS_ACCESS_KEY: 'block' }, 'hi', [
      stream(['fine. key AKIAABCD', 'EFGHIJKLMNOP and more', ' text']),
    ]);
    const got = read(r.client!.body);
    expect(got.error).toMatchObject({ code: 'content_blocked' });
    expect(got.after).toBe(0);
    expect(got.text).toBe('fine. key ');
    expect(r.client!.body).not.toContain('AKIA');
    expect(r.audit).toMatchObject({
      status: 200,
      outcome: 'rejected',
      error: { code: 'content_blocked', rule_id: 'dlp.AWS_ACCESS_KEY' },
    });
  });

  it('redacts tool-call argument deltas', async () => {
    const tool = (args: string, finish: string | null = null) => ({
      choices: [
        { index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args } }] }, finish_reason: finish },
      ],
    });
    const body = `${sse(tool('{"to":"ja'))}${sse(tool('ne@x.io"}'))}${sse({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })}`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    const args = r
      .client!.body.split('\n\n')
      .filter((b) => b.startsWith('data: '))
      .flatMap((b) => JSON.parse(b.slice(6)).choices[0].delta.tool_calls ?? [])
      .map((c: { function: { arguments: string } }) => c.function.arguments)
      .join('');
    expect(args).toBe('{"to":"[REDACTED:EMAIL]"}');
  });

  it('rewrites a completions stream (choices[].text), two choices held apart', async () => {
    const ev = (index: number, text: string, finish: string | null = null) =>
      sse({ object: 'text_completion', choices: [{ index, text, finish_reason: finish }] });
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/completions', body: { model: 'm', prompt: 'x', stream: true, n: 2 } },
      response: {
        headers: SSE,
        chunks: [
          ev(0, 'to a@') + ev(1, 'b@y.') + ev(0, 'x.io') + ev(1, 'io ok') + ev(0, '', 'stop') + ev(1, '', 'stop'),
        ],
      },
    });
    const texts = ['', ''];
    for (const b of r.client!.body.split('\n\n'))
      if (b.startsWith('data: {')) for (const c of JSON.parse(b.slice(6)).choices) texts[c.index] += c.text;
    expect(texts).toEqual(['to [REDACTED:EMAIL]', '[REDACTED:EMAIL] ok']);
  });

  it('reads Ollama NDJSON and releases the held tail with the done record', async () => {
    const line = (content: string, done = false) =>
      `${JSON.stringify({ model: 'l', message: { role: 'assistant', content }, done })}\n`;
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/api/chat', body: { model: 'l', messages: [{ role: 'user', content: 'hi' }] } },
      response: {
        headers: { 'content-type': 'application/x-ndjson' },
        chunks: [line('to a@') + line('x.io') + line('', true)],
      },
    });
    const text = r
      .client!.body.trim()
      .split('\n')
      .map((l) => JSON.parse(l).message.content)
      .join('');
    expect(text).toBe('to [REDACTED:EMAIL]');
  });

  it.each([
    ['inside the text', ['Mail ', 'jane@', 'x.io', ' now'], 'Mail [REDACTED:EMAIL] now'],
    ['at its end, held until the last event', ['Mail ', 'jane@', 'x.io'], 'Mail [REDACTED:EMAIL]'],
  ])(
    'counts a finding of a TGI stream once (%s), though its last event repeats the text in generated_text',
    async (_, pieces, redacted) => {
      const token = (i: number, text: string, special = false) => ({ id: i, text, logprob: -0.5, special });
      const event = (o: unknown) => `data:${JSON.stringify(o)}\n\n`;
      const events = pieces.map((t, i) =>
        event({ index: i + 1, token: token(i, t), top_tokens: null, generated_text: null, details: null }),
      );
      events.push(
        event({
          index: 5,
          token: token(4, '</s>', true),
          top_tokens: null,
          generated_text: pieces.join(''),
          details: { finish_reason: 'eos_token', generated_tokens: 5, input_length: 3, seed: null },
        }),
      );
      const r = await runStage({
        stages: ['llm.api_shape'],
        extraStages: stages({ EMAIL: 'redact' }),
        request: { path: '/generate_stream', body: { inputs: 'hi' } },
        response: { headers: SSE, chunks: [events.join('')] },
      });
      const data = r
        .client!.body.split('\n\n')
        .filter((b) => b.startsWith('data:'))
        .map((b) => JSON.parse(b.slice(5)));
      expect(data.map((d) => d.token.text).join('')).toBe(redacted);
      expect(data.at(-1).generated_text).toBe(redacted);
      // The token channel found it; generated_text is the same text again, not a second e-mail.
      expect(r.audit.dlp?.findings).toEqual([
        { type: 'EMAIL', action: 'redact', where: 'response', path: 'choices[0].content', start: 5, end: 14 },
      ]);
    },
  );

  it.each([
    ['gzip', 'identity'],
    ['identity', 'gzip'],
  ])('refuses a response that names its content-encoding twice (%s, then %s)', async (first, last) => {
    const { gzipSync } = await import('node:zlib');
    const body = gzipSync(stream(['mail jane@x.io']));
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: {
        path: '/v1/chat/completions',
        body: { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      },
      response: {
        headers: SSE,
        extraHeaders: [
          ['content-encoding', first],
          ['content-encoding', last],
        ],
        chunks: [body],
      },
    });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.response_unreadable' });
  });

  it.each([
    ['text/event-stream; charset=utf-16', true],
    ['text/event-stream; charset="UTF-8"; charset=utf-16le', true],
    ['text/event-stream; charset=UTF-8', false],
  ])(
    'a response declared %s is refused (%s) unless its text is UTF-8, which the scan decodes',
    async (type, refused) => {
      const r = await chat({ EMAIL: 'redact' }, 'hi', [stream(['hi'])], { 'content-type': type });
      if (refused) expect(r.refused).toMatchObject({ code: 'content_blocked', ruleId: 'dlp.response_unreadable' });
      else expect(r.refused).toBeUndefined();
    },
  );

  it('refuses a compressed response rather than pass it on unread', async () => {
    const r = await chat({}, 'hi', ['\x1f\x8b...'], { ...SSE, 'content-encoding': 'gzip' });
    expect(r.refused).toMatchObject({ code: 'content_blocked', ruleId: 'dlp.response_unreadable' });
  });
});

describe('dlp.response: the hold-back invariant for every split of the upstream bytes', () => {
  const texts = [
    'Reach jane.doe@example.com or 123-45-6789 today 😀 世界',
    'Your id [MRN_1] and mail [EMAIL_1].',
    'key -----BEGIN PRIVATE KEY-----\nMIIEabc\n-----END PRIVATE KEY----- end',
  ];
  for (const text of texts) {
    it(`releases the same text for every split: ${JSON.stringify(text.slice(0, 20))}`, async () => {
      const actions: Actions = { EMAIL: 'redact', US_SSN: 'mask', MRN: 'pseudonymise', PRIVATE_KEY: 'redact' };
      const prompt = 'my record MRN-424242, mail me';
      // Deltas of 1-4 characters, then every two-way split of the SSE bytes (also inside
      // multi-byte characters and SSE lines).
      const pieces: string[] = [];
      for (let i = 0, n = 1; i < text.length; i += n, n = (n % 4) + 1) pieces.push(text.slice(i, i + n));
      const bytes = Buffer.from(stream(pieces));
      const whole = await chat(actions, prompt, [bytes]);
      const expected = read(whole.client!.body).text;
      expect(expected).not.toMatch(/jane|123-45|MIIE/);
      if (text.includes('[MRN_1]')) expect(expected).toContain('MRN-424242');
      for (let cut = 1; cut < bytes.length; cut += 7) {
        const r = await chat(actions, prompt, [bytes.subarray(0, cut), bytes.subarray(cut)]);
        expect(read(r.client!.body).text, `cut at ${cut}`).toBe(expected);
      }
    });
  }
});

describe('dlp.response: the same invariant for reasoning streamed beside the content', () => {
  it('releases the same reasoning and content for every split', async () => {
    const reasoning = 'Mail jane.doe@example.com, or 123-45-6789 😀';
    const content = 'Done: bob@y.io';
    const ev = (delta: Record<string, unknown>, finish: string | null = null) =>
      sse({ choices: [{ index: 0, delta, finish_reason: finish }] });
    // Reasoning and content interleaved in deltas of 1-5 characters.
    let body = '';
    for (let i = 0, n = 1; i < Math.max(reasoning.length, content.length); i += n, n = (n % 5) + 1) {
      if (i < reasoning.length) body += ev({ reasoning_content: reasoning.slice(i, i + n) });
      if (i < content.length) body += ev({ content: content.slice(i, i + n) });
    }
    body += `${ev({}, 'stop')}data: [DONE]\n\n`;
    const bytes = Buffer.from(body);
    const joined = (out: string) => {
      const texts = { reasoning: '', content: '' };
      for (const b of out.split('\n\n')) {
        if (!b.startsWith('data: {')) continue;
        const d = JSON.parse(b.slice(6)).choices[0].delta;
        texts.reasoning += d.reasoning_content ?? '';
        texts.content += d.content ?? '';
      }
      return texts;
    };
    const actions: Actions = { EMAIL: 'redact', US_SSN: 'mask' };
    const expected = joined((await chat(actions, 'hi', [bytes])).client!.body);
    expect(expected.reasoning).toMatch(/^Mail \[REDACTED:EMAIL\], or .*6789 😀$/);
    expect(expected.content).toBe('Done: [REDACTED:EMAIL]');
    for (let cut = 1; cut < bytes.length; cut += 11) {
      const r = await chat(actions, 'hi', [bytes.subarray(0, cut), bytes.subarray(cut)]);
      expect(r.client!.body, `cut at ${cut}`).not.toMatch(/jane|bob@|123-45/);
      expect(joined(r.client!.body), `cut at ${cut}`).toEqual(expected);
    }
  });
});

describe('dlp.response on JSON responses', () => {
  const completion = (content: string) =>
    JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    });

  it('redacts and restores in a buffered JSON body, and fixes its length', async () => {
    const body = completion('Hi [EMAIL_1], cc bob@y.io');
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'pseudonymise' }),
      request: {
        path: '/v1/chat/completions',
        body: { model: 'm', messages: [{ role: 'user', content: 'I am a@x.io' }] },
      },
      response: { headers: { 'content-length': String(body.length) }, chunks: [body] },
    });
    expect(JSON.parse(r.client!.body).choices[0].message.content).toBe('Hi a@x.io, cc [EMAIL_2]');
    const answer = r.answers.find((a) => a.responseBody !== undefined)!;
    const length = answer.responseBody!.response!.headerMutation!.setHeaders!.find(
      (h) => h.header?.key === 'content-length',
    );
    expect(Buffer.from(length!.header!.rawValue!).toString()).toBe(String(Buffer.byteLength(r.client!.body)));
    expect(r.audit.dlp?.findings.map((f) => f.where)).toEqual(['request', 'response']);
  });

  /** A JSON answer over a 100-byte server.maxBufferedResponseBytes, with an e-mail to redact. */
  const OVER_LIMIT = completion(`Mail jane.doe@example.com ${'x'.repeat(200)}`);
  const overLimit = (response: { headers?: Record<string, string>; chunks: string[] }) =>
    runStage({
      stages: ['llm.api_shape'],
      config: { server: { maxBufferedResponseBytes: 100 } },
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } },
      response,
    });

  it('refuses at the response headers a JSON answer whose content-length is over server.maxBufferedResponseBytes', async () => {
    // Refused before any body answer, while Envoy may still hold the headers: the client gets the
    // 403 and the record says so, instead of a 200 cut short at a body chunk.
    const body = OVER_LIMIT;
    const r = await overLimit({ headers: { 'content-length': String(body.length) }, chunks: [body] });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.response_too_large' });
    expect(r.answers.filter((a) => a.responseBody !== undefined)).toEqual([]);
    expect(r.audit).toMatchObject({ status: 403, outcome: 'rejected' });
  });

  it('refuses a chunked JSON answer once its bytes pass server.maxBufferedResponseBytes, releasing none', async () => {
    const body = OVER_LIMIT;
    const r = await overLimit({ chunks: [body.slice(0, 60), body.slice(60)] });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.response_too_large' });
    expect(r.client?.body ?? '').not.toContain('jane');
  });

  it.each([
    ['a value outside quotes', '{"choices":[{"message":{"content":"hi"}}],"note": jane@x.io}'],
    ['bytes before the JSON', 'jane@x.io {"choices":[]}'],
    ['bytes after the JSON', '{"choices":[]} jane@x.io'],
    ['an HTML page', '<html>mail jane@x.io</html>'],
  ])('refuses a JSON answer that is not JSON (%s) rather than pass its bytes unscanned', async (_, body) => {
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } },
      response: {
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        chunks: [body],
      },
    });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.scan_error' });
    expect(r.client?.body ?? '').not.toContain('jane');
  });

  it('reads a JSON answer that opens with a BOM and whitespace', async () => {
    const body = `\ufeff \n${completion('mail jane@x.io')}`;
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } },
      response: { headers: { 'content-type': 'application/json' }, chunks: [body] },
    });
    expect(r.refused).toBeUndefined();
    expect(r.client!.body).toContain('mail [REDACTED:EMAIL]');
  });

  it('refuses a JSON response with a block finding', async () => {
    const body = completion('AKIAABCDEFGHIJKLMNOP');
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ AWS_ACCESS_KEY: 'block' }),
      request: { path: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } },
      response: { headers: { 'content-length': String(body.length) }, chunks: [body] },
    });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.AWS_ACCESS_KEY' });
  });
});

describe('dlp.response: every text of a streamed event, not only content and tool arguments', () => {
  /** An OpenAI-compatible chunk of one choice. */
  const ev = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) =>
    sse({
      id: 'c',
      object: 'chat.completion.chunk',
      model: 'm',
      choices: [{ index: 0, delta, finish_reason: finish, ...extra }],
    });
  /** The chunks' JSON as the client got them. */
  const events = (body: string) =>
    body
      .split('\n\n')
      .filter((b) => b.startsWith('data: {'))
      .map((b) => JSON.parse(b.slice(6)));
  /** One member of every choice's delta, joined over the stream. */
  const joined = (body: string, get: (delta: Record<string, unknown>) => unknown) =>
    events(body)
      .flatMap((e) => e.choices ?? [])
      .map((c: { delta?: Record<string, unknown> }) => get(c.delta ?? {}))
      .filter((v): v is string => typeof v === 'string')
      .join('');

  it.each([
    [
      'reasoning_content (vLLM)',
      (t: string) => ({ reasoning_content: t }),
      (d: Record<string, unknown>) => d.reasoning_content,
    ],
    ['reasoning', (t: string) => ({ reasoning: t }), (d: Record<string, unknown>) => d.reasoning],
    ['refusal', (t: string) => ({ refusal: t }), (d: Record<string, unknown>) => d.refusal],
    [
      'a legacy function call’s arguments',
      (t: string) => ({ function_call: { arguments: t } }),
      (d: Record<string, unknown>) => (d.function_call as { arguments?: string } | undefined)?.arguments,
    ],
    [
      'audio output’s transcript',
      (t: string) => ({ audio: { id: 'a', transcript: t } }),
      (d: Record<string, unknown>) => (d.audio as { transcript?: string } | undefined)?.transcript,
    ],
  ])('holds back and redacts %s split over events, beside the content', async (_, put, get) => {
    const body = `${ev(put('mail jane.doe@exa'))}${ev({ content: 'Hi ' })}${ev(put('mple.com and bob'))}${ev(put('@x.io'))}${ev({}, 'stop')}data: [DONE]\n\n`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    const out = r.client!.body;
    expect(out).not.toMatch(/jane|doe@|@exa|mple\.com|bob/);
    expect(joined(out, get)).toBe('mail [REDACTED:EMAIL] and [REDACTED:EMAIL]');
    expect(joined(out, (d) => d.content)).toBe('Hi ');
    expect(r.audit.dlp?.findings.map((f) => [f.path, f.start, f.end])).toEqual([
      [
        expect.stringMatching(
          /^choices\[0\]\.delta\.(reasoning_content|reasoning|refusal|function_call\.arguments|audio\.transcript)$/,
        ),
        5,
        25,
      ],
      [expect.stringMatching(/^choices\[0\]\.delta\./), 30, 38],
    ]);
  });

  it('judges every other string of an event whole: an unknown member, a tool call’s name', async () => {
    const body = `${ev({ content: 'ok', annotations: [{ note: 'from a@x.io' }] })}${ev({ tool_calls: [{ index: 0, function: { name: 'to:b@y.io', arguments: '{}' } }] })}${ev({}, 'stop')}data: [DONE]\n\n`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    const out = events(r.client!.body);
    expect(out[0].choices[0].delta.annotations[0].note).toBe('from [REDACTED:EMAIL]');
    expect(out[1].choices[0].delta.tool_calls[0].function.name).toBe('to:[REDACTED:EMAIL]');
    expect(r.audit.dlp?.findings.map((f) => f.path)).toEqual([
      'choices[0].delta.annotations[0].note',
      'choices[0].delta.tool_calls[0].function.name',
    ]);
  });

  it('a value JSON.parse drops (a name given twice) never reaches the client unread', async () => {
    const dup = '{"choices":[{"index":0,"delta":{"note":"jane@x.io","note":"hi"},"finish_reason":null}]}';
    const r = await chat({ EMAIL: 'redact' }, 'hi', [`data: ${dup}\n\n${stream(['fine'])}`]);
    expect(r.client!.body).not.toContain('jane');
    expect(events(r.client!.body)[0].choices[0].delta.note).toBe('hi');
  });

  it('ends the stream at a block in such a string, sending nothing of that event', async () => {
    const body = `${ev({ content: 'fine' })}${ev({ content: ' x', annotations: [{ note: 'AKIAABCDEFGHIJKLMNOP' }] })}${ev({}, 'stop')}data: [DONE]\n\n`;
    const r = await chat({ AWS_ACCESS_KEY: 'block' }, 'hi', [body]);
    const got = read(r.client!.body);
    expect(r.client!.body).not.toContain('AKIA');
    expect(got.error).toMatchObject({ code: 'content_blocked' });
    expect(got.after).toBe(0);
    expect(r.audit.error).toMatchObject({ rule_id: 'dlp.AWS_ACCESS_KEY' });
  });

  const ollama = (message: Record<string, unknown>, done = false) =>
    `${JSON.stringify({ model: 'l', message: { role: 'assistant', content: '', ...message }, done })}\n`;
  const ollamaChat = (actions: Actions, prompt: string, body: string) =>
    runStage({
      stages: ['llm.api_shape'],
      extraStages: stages(actions),
      request: { path: '/api/chat', body: { model: 'l', messages: [{ role: 'user', content: prompt }] } },
      response: { headers: { 'content-type': 'application/x-ndjson' }, chunks: [body] },
    });
  const lines = (body: string) =>
    body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));

  it('Ollama: holds back its thinking and judges a tool call’s arguments (an object) whole', async () => {
    const body =
      ollama({ thinking: 'write to jane@' }) +
      ollama({ thinking: 'x.io now' }) +
      ollama({ tool_calls: [{ function: { name: 'send', arguments: { to: 'bob@y.io', cc: ['c@z.io'] } } }] }) +
      ollama({}, true);
    const r = await ollamaChat({ EMAIL: 'redact' }, 'hi', body);
    expect(r.client!.body).not.toMatch(/jane|bob@|c@z/);
    const out = lines(r.client!.body);
    expect(out.map((l) => l.message.thinking ?? '').join('')).toBe('write to [REDACTED:EMAIL] now');
    expect(out[2].message.tool_calls[0].function.arguments).toEqual({
      to: '[REDACTED:EMAIL]',
      cc: ['[REDACTED:EMAIL]'],
    });
    expect(r.audit.dlp?.findings.map((f) => f.path)).toEqual([
      'message.thinking',
      'message.tool_calls[0].function.arguments.to',
      'message.tool_calls[0].function.arguments.cc[0]',
    ]);
  });

  it('restores this request’s placeholders in such strings for the caller', async () => {
    const body =
      ollama({ tool_calls: [{ function: { name: 'send', arguments: { to: '[EMAIL_1]' } } }] }) + ollama({}, true);
    const r = await ollamaChat({ EMAIL: 'pseudonymise' }, 'I am a@x.io', body);
    expect(lines(r.client!.body)[0].message.tool_calls[0].function.arguments.to).toBe('a@x.io');
  });

  it('ends the stream when an event to rewrite is nested too deep to copy, releasing none of it', async () => {
    const deep = `${'['.repeat(20000)}1${']'.repeat(20000)}`;
    const body = `data: {"choices":[{"index":0,"delta":{"content":"mail a@x.io"},"finish_reason":"stop"}],"x":${deep}}\n\ndata: [DONE]\n\n`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    expect(r.client!.body).not.toContain('a@x.io');
    expect(read(r.client!.body).error).toMatchObject({ code: 'content_blocked' });
    expect(r.audit.error).toMatchObject({ rule_id: 'dlp.scan_error' });
  });

  it('ends a stream that carries per-token texts it was not asked for, before their event', async () => {
    const lp = (token: string) => ({ logprobs: { content: [{ token, logprob: -1, bytes: [], top_logprobs: [] }] } });
    const body = `${ev({ content: 'fine' }, null, { logprobs: null })}${ev({ content: 'mail jane' }, null, lp('mail jane'))}${ev({ content: '@x.io' }, 'stop', lp('@x.io'))}data: [DONE]\n\n`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    const got = read(r.client!.body);
    expect(r.client!.body).not.toContain('jane');
    expect(got.error).toMatchObject({ code: 'content_blocked' });
    expect(got.after).toBe(0);
    expect(r.audit.error).toMatchObject({ rule_id: 'dlp.token_details' });
  });
});

describe('dlp.response: a tool call’s arguments as an object (Ollama) are the model’s text throughout', () => {
  // Protocol members (id, type, role...) are skipped elsewhere in an answer, and member names are
  // the server's; inside arguments the model wrote both.
  const answer = (args: unknown, done = true) =>
    JSON.stringify({
      model: 'l',
      message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'send', arguments: args } }] },
      done,
    });
  const ask = (actions: Actions, stream: boolean, body: string) =>
    runStage({
      stages: ['llm.api_shape'],
      extraStages: stages(actions),
      request: { path: '/api/chat', body: { model: 'l', stream, messages: [{ role: 'user', content: 'hi' }] } },
      response: stream
        ? {
            headers: { 'content-type': 'application/x-ndjson' },
            chunks: [
              `${answer(JSON.parse(body), false)}\n${JSON.stringify({ model: 'l', message: { role: 'assistant', content: '' }, done: true })}\n`,
            ],
          }
        : {
            headers: {
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(answer(JSON.parse(body)))),
            },
            chunks: [answer(JSON.parse(body))],
          },
    });
  for (const stream of [false, true]) {
    const how = stream ? 'streamed' : 'whole';
    it(`${how}: redacts a value under a protocol-looking name (id, type, role)`, async () => {
      const r = await ask({ EMAIL: 'redact' }, stream, '{"id":"a@x.io","type":["b@y.io"],"nested":{"role":"c@z.io"}}');
      expect(r.client!.body).not.toMatch(/a@x|b@y|c@z/);
      const args = JSON.parse(r.client!.body.split('\n')[0]!).message.tool_calls[0].function.arguments;
      expect(args).toEqual({
        id: '[REDACTED:EMAIL]',
        type: ['[REDACTED:EMAIL]'],
        nested: { role: '[REDACTED:EMAIL]' },
      });
    });
    it(`${how}: redacts a number there (a card given as a number), as a string`, async () => {
      const r = await ask(
        { CREDIT_CARD: 'redact' },
        stream,
        '{"card":4111111111111111,"n":3,"more":[4000000000000002]}',
      );
      expect(r.client!.body).not.toMatch(/4111111111111111|4000000000000002/);
      const args = JSON.parse(r.client!.body.split('\n')[0]!).message.tool_calls[0].function.arguments;
      expect(args).toEqual({ card: '[REDACTED:CREDIT_CARD]', n: 3, more: ['[REDACTED:CREDIT_CARD]'] });
      expect(r.audit.dlp?.findings.map((f) => f.path)).toEqual([
        'message.tool_calls[0].function.arguments.card',
        'message.tool_calls[0].function.arguments.more[0]',
      ]);
    });
    it(`${how}: a finding in a member name there refuses, its path not spelling it`, async () => {
      const r = await ask({ EMAIL: 'redact' }, stream, '{"a@x.io":{"note":"hi"}}');
      expect(r.client?.body ?? '').not.toContain('a@x.io');
      if (stream)
        expect(read(r.client!.body).error ?? JSON.parse(r.client!.body.trim().split('\n').at(-1)!)).toBeTruthy();
      else expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.EMAIL' });
      expect(r.audit.error).toMatchObject({ code: 'content_blocked', rule_id: 'dlp.EMAIL' });
      expect(JSON.stringify(r.audit.dlp)).not.toContain('a@x.io');
      expect(r.audit.dlp?.findings.map((f) => f.path)).toContain('message.tool_calls[0].function.arguments.{key}');
    });
  }
});

describe('dlp.response: Ollama’s context (the token ids of the exchange) after DLP changed the answer', () => {
  // The ids encode the answer as the model wrote it: once DLP changed the text, they would give
  // back what it took out. They are emptied then (Ollama reads [] as no context), kept otherwise.
  const generate = (actions: Actions, stream: boolean, records: Record<string, unknown>[]) => {
    const body = stream
      ? records.map((r) => `${JSON.stringify(r)}\n`).join('')
      : JSON.stringify({ ...records.at(-1), response: records.map((r) => r.response).join('') });
    return runStage({
      stages: ['llm.api_shape'],
      extraStages: stages(actions),
      request: { path: '/api/generate', body: { model: 'l', stream, prompt: 'hi' } },
      response: {
        headers: stream
          ? { 'content-type': 'application/x-ndjson' }
          : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        chunks: [body],
      },
    });
  };
  const last = (body: string) => JSON.parse(body.trim().split('\n').at(-1)!);
  for (const stream of [false, true]) {
    const how = stream ? 'streamed' : 'whole';
    it(`${how}: emptied when a value was redacted`, async () => {
      const r = await generate({ EMAIL: 'redact' }, stream, [
        { model: 'l', response: 'mail a@x.io', done: false },
        { model: 'l', response: '', done: true, context: [1, 2, 3] },
      ]);
      expect(r.client!.body).not.toContain('a@x.io');
      expect(last(r.client!.body).context).toEqual([]);
    });
    it(`${how}: kept when nothing changed`, async () => {
      const r = await generate({ EMAIL: 'redact' }, stream, [
        { model: 'l', response: 'all fine', done: false },
        { model: 'l', response: '', done: true, context: [1, 2, 3] },
      ]);
      expect(last(r.client!.body).context).toEqual([1, 2, 3]);
    });
  }
});

describe('dlp.response: SSE lines that are not data reach the client too', () => {
  const finish = `${sse(delta('', 'stop'))}data: [DONE]\n\n`;
  const blocked = (r: Awaited<ReturnType<typeof chat>>, rule: string) => {
    expect(read(r.client!.body).error).toMatchObject({ code: 'content_blocked' });
    expect(r.audit.error).toMatchObject({ rule_id: rule });
  };
  const table: [string, string, string][] = [
    ['a keep-alive comment', `: ping a@x.io\n\n`, 'sse.comment'],
    ['a comment inside a data event', `: a@x.io\n${sse(delta('hi'))}`, 'sse.comment'],
    ['an id', `id: a@x.io\n${sse(delta('hi'))}`, 'sse.id'],
    ['an event name', `event: a@x.io\n${sse(delta('hi'))}`, 'sse.event'],
    ['an id-only record', `id: a@x.io\n\n`, 'sse.id'],
    ['a field no client reads, its name not spelled', `a@x.io: 1\n${sse(delta('hi'))}`, 'sse.field'],
    ['a comment beside [DONE]', `: a@x.io\ndata: [DONE]\n\n`, 'sse.comment'],
  ];
  for (const [name, record, path] of table)
    it(`judges ${name}: a finding ends the stream before it, whatever its action`, async () => {
      const r = await chat({ EMAIL: 'redact' }, 'hi', [`${sse(delta('fine'))}${record}${finish}`]);
      expect(r.client!.body).not.toContain('a@x.io');
      expect(read(r.client!.body).after).toBe(0);
      blocked(r, 'dlp.EMAIL');
      expect(r.audit.dlp?.findings).toEqual([
        expect.objectContaining({ type: 'EMAIL', action: 'block', where: 'response', path }),
      ]);
    });

  it('passes clean keep-alives as they came, and keeps an event’s other lines when it rewrites it', async () => {
    const body = `: ping\n\nid: 1\nevent: message\n${sse(delta('mail a@x.io'))}:\n\n${finish}`;
    const r = await chat({ EMAIL: 'redact' }, 'hi', [body]);
    const records = r.client!.body.split('\n\n');
    expect(records[0]).toBe(': ping');
    expect(records[1]!.split('\n').slice(0, 2)).toEqual(['id: 1', 'event: message']);
    expect(records[2]).toBe(':');
    const text = records.map((b) => b.split('\n').find((l) => l.startsWith('data: {'))).filter((l) => l !== undefined);
    expect(text.map((l) => JSON.parse(l.slice(6)).choices[0].delta.content).join('')).toBe('mail [REDACTED:EMAIL]');
  });

  it('records a warn finding there and passes the line', async () => {
    const body = `: a@x.io\n\n${sse(delta('fine'))}${finish}`;
    const r = await chat({ EMAIL: 'warn' }, 'hi', [body]);
    expect(r.client!.body.startsWith(': a@x.io\n\n')).toBe(true);
    expect(r.audit.dlp?.findings).toEqual([
      expect.objectContaining({ type: 'EMAIL', action: 'warn', path: 'sse.comment' }),
    ]);
  });
});

describe('dlp: per-token texts (logprobs) when responses are checked', () => {
  const ask = (path: string, body: Record<string, unknown>, response = true) => {
    const setup = () => ({
      engine: testEngine({ EMAIL: 'redact' }),
      options: { onScanError: 'block' as const, scanBudgetMs: 1000, response },
    });
    return runStage({
      stages: ['llm.api_shape'],
      extraStages: [
        { ...dlpRequestStage(setup), always: true },
        { ...dlpResponseStage(setup), always: true },
      ],
      request: { path, body },
    });
  };
  const msgs = [{ role: 'user', content: 'hi' }];
  it.each([
    [
      'a chat stream with logprobs',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, logprobs: true },
      'logprobs',
    ],
    [
      'a chat stream with top_logprobs',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, top_logprobs: 2 },
      'top_logprobs',
    ],
    [
      'a completions stream with logprobs 0 (the sampled tokens)',
      '/v1/completions',
      { model: 'm', stream: true, prompt: 'x', logprobs: 0 },
      'logprobs',
    ],
    [
      'a stream with vLLM’s prompt_logprobs',
      '/v1/completions',
      { model: 'm', stream: true, prompt: 'x', prompt_logprobs: 0 },
      'prompt_logprobs',
    ],
    [
      'an Ollama chat (streamed by default) with logprobs',
      '/api/chat',
      { model: 'm', messages: msgs, logprobs: true },
      'logprobs',
    ],
    [
      'a TGI stream with top_n_tokens',
      '/generate_stream',
      { inputs: 'x', parameters: { top_n_tokens: 2 } },
      'parameters.top_n_tokens',
    ],
    [
      'a lax spelling ("true")',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, logprobs: 'true' },
      'logprobs',
    ],
    [
      'a stream with vLLM’s return_token_ids (the ids of each chunk’s text)',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, return_token_ids: true },
      'return_token_ids',
    ],
  ])('refuses %s (403, dlp.token_details)', async (_, path, body, param) => {
    const r = await ask(path, body);
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.token_details', param });
  });

  it.each([
    [
      'a stream with logprobs false',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, logprobs: false },
      true,
    ],
    [
      'a stream with top_logprobs 0',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, top_logprobs: 0 },
      true,
    ],
    [
      'an answer not streamed (judged whole at its end)',
      '/v1/chat/completions',
      { model: 'm', messages: msgs, logprobs: true },
      true,
    ],
    ['an Ollama chat not streamed', '/api/chat', { model: 'm', stream: false, messages: msgs, logprobs: true }, true],
    [
      'a stream with logprobs where responses are not checked',
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: msgs, logprobs: true },
      false,
    ],
  ])('admits %s', async (_, path, body, response) => {
    const r = await ask(path, body, response);
    expect(r.refused).toBeUndefined();
  });

  const answer = (content: string, tokens: string[] | null) =>
    JSON.stringify({
      object: 'chat.completion',
      model: 'm',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content },
          logprobs: tokens === null ? null : { content: tokens.map((token) => ({ token, logprob: -1 })) },
          finish_reason: 'stop',
        },
      ],
    });
  const whole = (body: string) =>
    runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/chat/completions', body: { model: 'm', logprobs: true, messages: msgs } },
      response: { headers: { 'content-type': 'application/json' }, chunks: [body] },
    });

  it('refuses a whole answer whose changed text its logprobs would rebuild', async () => {
    const r = await whole(answer('mail jane@x.io', ['mail ', 'jane', '@x', '.io']));
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.token_details' });
  });

  it('refuses a whole answer whose changed text vLLM’s token_ids would give back', async () => {
    const body = JSON.parse(answer('mail jane@x.io', null));
    body.prompt_token_ids = [1, 2];
    body.choices[0].token_ids = [3, 4, 5];
    const r = await whole(JSON.stringify(body));
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.token_details' });
    body.choices[0].message.content = 'all fine';
    expect((await whole(JSON.stringify(body))).refused).toBeUndefined();
  });

  it('ends a stream that carries token_ids it was not asked for, before their event', async () => {
    const chunk = (content: string, ids: number[] | null, finish: string | null = null) =>
      sse({ choices: [{ index: 0, delta: { content }, token_ids: ids, finish_reason: finish }] });
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: stages({ EMAIL: 'redact' }),
      request: { path: '/v1/chat/completions', body: { model: 'm', stream: true, messages: msgs } },
      response: {
        headers: SSE,
        chunks: [`${chunk('fine', null)}${chunk('mail jane', [7, 8])}${chunk('@x.io', [9], 'stop')}data: [DONE]\n\n`],
      },
    });
    expect(read(r.client!.body).error).toMatchObject({ code: 'content_blocked' });
    expect(r.client!.body).not.toContain('[7,8]');
    expect(r.audit.error).toMatchObject({ rule_id: 'dlp.token_details' });
  });

  it.each([
    ['with logprobs and nothing to change', answer('all fine', ['all', ' fine'])],
    ['with logprobs null and a value redacted', answer('mail jane@x.io', null)],
  ])('releases a whole answer %s', async (_, body) => {
    const r = await whole(body);
    expect(r.refused).toBeUndefined();
    expect(r.client!.body).not.toContain('jane');
  });
});

describe('dlp.response: a scan that throws on a streamed event', () => {
  const failing = (onScanError: 'block' | 'allow') => {
    const setup = () => ({
      engine: testEngine({ EMAIL: 'redact' }, { failOn: 'BOOM' }),
      options: { onScanError, scanBudgetMs: 1000, response: true },
    });
    return [
      { ...dlpRequestStage(setup), always: true },
      { ...dlpResponseStage(setup), always: true },
    ];
  };
  const ev = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    sse({ choices: [{ index: 0, delta, finish_reason: null, ...extra }] });
  const fin = `${sse({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}data: [DONE]\n\n`;
  it.each([
    ['in a channel (content)', ev({ content: 'ok BOOM' })],
    ['in another string of the event', ev({ content: 'ok', annotations: [{ note: 'BOOM' }] })],
  ])('%s: ends the stream (onScanError block), or lets the event through and says so (allow)', async (_, bad) => {
    const run = (mode: 'block' | 'allow') =>
      runStage({
        stages: ['llm.api_shape'],
        extraStages: failing(mode),
        request: {
          path: '/v1/chat/completions',
          body: { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] },
        },
        response: { headers: SSE, chunks: [ev({ content: 'fine ' }) + bad + fin] },
      });
    const blocked = await run('block');
    expect(read(blocked.client!.body).error).toMatchObject({ code: 'content_blocked' });
    expect(blocked.client!.body).not.toContain('BOOM');
    expect(blocked.audit.error).toMatchObject({ rule_id: 'dlp.scan_error' });
    const allowed = await run('allow');
    expect(allowed.client!.body).toContain('BOOM');
    expect(read(allowed.client!.body).error).toBeUndefined();
    expect(allowed.audit.dlp?.failed_open).toBe('response scan failed');
  });
});
