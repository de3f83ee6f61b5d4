// audit.capture through the real pipeline and state machine (runStage), with the real DLP stages
// redacting e-mail addresses: the capture keeps the prompt as forwarded and the response as the
// client received it (JSON and streamed), never the address; a caller no rule selects has no
// capture; the audit record links the line by its SHA-256 and sizes, without text.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage } from '../../test/harness/run-stage.ts';
import { captureLine } from './capture-stage.ts';
import { sha256Hex } from './chain.ts';

const CONFIG = {
  dlp: { inspect: 'both', policies: [{ name: 'default', detectors: { EMAIL: 'redact' } }] },
  audit: {
    capture: {
      rules: [
        { id: 'acme', from: { tenants: ['acme'] }, maxChars: 64 },
        { id: 'globex-prompts', from: { tenants: ['globex'] }, response: false },
      ],
    },
  },
};
const STAGES = ['llm.api_shape', 'dlp.request', 'dlp.response'];
const ADDRESS = 'jane.doe@example.com';
const chat = (content: string, stream = false) => ({
  path: '/v1/chat/completions',
  body: {
    model: 'm',
    stream,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content },
    ],
  },
});
const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const delta = (content: string, finish: string | null = null) =>
  sse({
    id: 'c',
    object: 'chat.completion.chunk',
    model: 'm',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  });

async function run(
  tenant: string,
  request: ReturnType<typeof chat>,
  response: { headers?: Record<string, string>; chunks: string[] },
) {
  const r = await runStage({
    stages: STAGES,
    config: CONFIG,
    given: { principal: jwtPrincipal({ tenant }) },
    request,
    response,
  });
  const line = captureLine(r.ctx);
  return { run: r, line, capture: line === undefined ? undefined : JSON.parse(line) };
}

describe('audit.capture', () => {
  it('JSON: the prompt as forwarded and the answer as delivered, both redacted; the record links the line', async () => {
    const answer = {
      id: 'x',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: `Mail ${ADDRESS} now` }, finish_reason: 'stop' }],
    };
    const {
      run: r,
      line,
      capture,
    } = await run('acme', chat(`Write to ${ADDRESS} please`), { chunks: [JSON.stringify(answer)] });
    expect(r.client?.body).not.toContain(ADDRESS);
    expect(line).not.toContain(ADDRESS);
    expect(capture).toMatchObject({
      type: 'capture',
      request_id: r.audit.request_id,
      time: r.audit.time,
      rule: 'acme',
      prompt: [
        { role: 'system', text: 'Be brief.' },
        { role: 'user', text: 'Write to [REDACTED:EMAIL] please' },
      ],
      response: [{ choice: 0, text: 'Mail [REDACTED:EMAIL] now' }],
      truncated: { prompt: false, response: false },
    });
    expect(r.audit.capture).toEqual({
      sha256: sha256Hex(line!),
      rule: 'acme',
      prompt_chars: 9 + 'Write to [REDACTED:EMAIL] please'.length,
      response_chars: 'Mail [REDACTED:EMAIL] now'.length,
      truncated: { prompt: false, response: false },
    });
    expect(JSON.stringify(r.audit)).not.toContain('REDACTED');
  });

  it('a stream: the deltas the client got, joined, with an address split over two events redacted', async () => {
    const chunks = [
      delta('Mail jane.d'),
      delta('oe@example.com'),
      delta(' now'),
      delta('', 'stop'),
      'data: [DONE]\n\n',
    ];
    const {
      run: r,
      line,
      capture,
    } = await run('acme', chat(`Write to ${ADDRESS}`, true), {
      headers: { 'content-type': 'text/event-stream' },
      chunks,
    });
    expect(r.client?.body).not.toContain('jane.d');
    expect(line).not.toContain('jane.d');
    expect(capture.prompt.at(-1)).toEqual({ role: 'user', text: 'Write to [REDACTED:EMAIL]' });
    expect(capture.response).toEqual([{ choice: 0, text: 'Mail [REDACTED:EMAIL] now' }]);
  });

  it('a long stream is kept up to maxChars and counted to its end', async () => {
    const chunks = [...Array.from({ length: 50 }, () => delta('0123456789')), delta('', 'stop'), 'data: [DONE]\n\n'];
    const { run: r, capture } = await run('acme', chat('count', true), {
      headers: { 'content-type': 'text/event-stream' },
      chunks,
    });
    expect(capture.response[0].text).toBe('0123456789'.repeat(7).slice(0, 64));
    expect(capture.chars.response).toBe(500);
    expect(capture.truncated).toEqual({ prompt: false, response: true });
    expect(r.audit.capture?.truncated.response).toBe(true);
  });

  it('a rule may keep the prompt only', async () => {
    const { run: r, capture } = await run('globex', chat('hello'), {
      chunks: [JSON.stringify({ choices: [{ index: 0, message: { content: 'hi' } }] })],
    });
    expect(capture.prompt.at(-1)).toEqual({ role: 'user', text: 'hello' });
    expect(capture.response).toBeNull();
    expect(r.audit.capture?.response_chars).toBeNull();
  });

  it('Ollama NDJSON: the streamed message contents, joined, redacted', async () => {
    const line = (content: string, done = false) =>
      `${JSON.stringify({ model: 'm', message: { role: 'assistant', content }, done })}\n`;
    const r = await runStage({
      stages: STAGES,
      config: CONFIG,
      given: { principal: jwtPrincipal({ tenant: 'acme' }) },
      request: { path: '/api/chat', body: { model: 'm', messages: [{ role: 'user', content: `to ${ADDRESS}` }] } },
      response: {
        headers: { 'content-type': 'application/x-ndjson' },
        chunks: [line('Mail jane.'), line('doe@example.com'), line(' ok'), line('', true)],
      },
    });
    const capture = JSON.parse(captureLine(r.ctx)!);
    expect(capture.prompt).toEqual([{ role: 'user', text: 'to [REDACTED:EMAIL]' }]);
    expect(capture.response).toEqual([{ choice: 0, text: 'Mail [REDACTED:EMAIL] ok' }]);
  });

  it('a JSON answer larger than server.maxBufferedResponseBytes is not kept (response null), the prompt is', async () => {
    const answer = JSON.stringify({ choices: [{ index: 0, message: { content: 'x'.repeat(400) } }] });
    const r = await runStage({
      stages: ['llm.api_shape'],
      config: { ...CONFIG, server: { maxBufferedResponseBytes: 100 } },
      given: { principal: jwtPrincipal({ tenant: 'acme' }) },
      request: chat('hello'),
      response: { chunks: [answer.slice(0, 200), answer.slice(200)] },
    });
    expect(r.client?.body).toBe(answer);
    const capture = JSON.parse(captureLine(r.ctx)!);
    expect(capture.prompt.at(-1)).toEqual({ role: 'user', text: 'hello' });
    expect(capture.response).toBeNull();
    expect(r.audit.capture?.response_chars).toBeNull();
  });

  it('a caller no rule selects has no capture line, and its record says null', async () => {
    const { run: r, line } = await run('initech', chat(`Write to ${ADDRESS}`), { chunks: ['{"choices":[]}'] });
    expect(line).toBeUndefined();
    expect(r.audit.capture).toBeNull();
  });

  it('a request refused before it went upstream keeps no prompt (the blocked text stays out)', async () => {
    const r = await runStage({
      stages: STAGES,
      config: { ...CONFIG, dlp: { inspect: 'both', policies: [{ name: 'default', detectors: { EMAIL: 'block' } }] } },
      given: { principal: jwtPrincipal({ tenant: 'acme' }) },
      request: chat(`Write to ${ADDRESS}`),
    });
    expect(r.refused?.code).toBe('content_blocked');
    expect(captureLine(r.ctx)).toBeUndefined();
    expect(r.audit.capture).toBeNull();
  });
});
