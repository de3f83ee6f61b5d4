// dlp.request through the real state machine (runStage), over a small test engine: what goes
// upstream, what is refused, and what the audit keeps (never the value).
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/harness/dlp-test-engine.ts';
import { runStage } from '../../../test/harness/run-stage.ts';
import type { DlpAction } from './engine-port.ts';
import { type DlpGateOptions, dlpRequestStage } from './request-stage.ts';
import { dlpAudit } from './state.ts';

const OPTIONS: DlpGateOptions = { onScanError: 'block', scanBudgetMs: 1000, response: true };

function stage(actions: Partial<Record<string, DlpAction>>, over: Partial<DlpGateOptions> = {}, failOn?: string) {
  const d = dlpRequestStage(() => ({ engine: testEngine(actions, { failOn }), options: { ...OPTIONS, ...over } }));
  return { ...d, always: true };
}

const chat = (content: unknown, extra: Record<string, unknown> = {}) => ({
  model: 'm',
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content },
  ],
  ...extra,
});

async function run(
  body: unknown,
  actions: Partial<Record<string, DlpAction>>,
  over: Partial<DlpGateOptions> = {},
  failOn?: string,
) {
  return runStage({
    stages: ['llm.api_shape'],
    extraStages: [stage(actions, over, failOn)],
    request: { path: '/v1/chat/completions', body: body as Record<string, unknown> },
  });
}

describe('dlp.request', () => {
  it('redacts an e-mail in a message and forwards the rest byte for byte', async () => {
    const r = await run(chat('mail jane.doe@example.com now'), { EMAIL: 'redact' });
    expect(r.upstream?.body).toBe(JSON.stringify(chat('mail [REDACTED:EMAIL] now')));
    expect(r.upstream?.set['content-length']).toBe(String(Buffer.byteLength(r.upstream!.body!)));
    expect(r.ctx.dataClasses).toEqual(new Set(['PII']));
    expect(dlpAudit(r.ctx)).toEqual({
      findings: [{ type: 'EMAIL', action: 'redact', where: 'request', path: 'messages[1].content', start: 5, end: 25 }],
      findings_dropped: 0,
      data_classes: ['PII'],
      failed_open: null,
      policy: null,
    });
    expect(JSON.stringify(r.audit)).not.toContain('jane.doe');
    expect(r.audit.dlp?.findings).toHaveLength(1);
  });

  it('blocks with 403 content_blocked and the detector rule id, forwarding nothing', async () => {
    const r = await run(chat('key AKIAABCDEFGHIJKLMNOP'), { AWS_ACCESS_KEY: 'block' });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.AWS_ACCESS_KEY' });
    expect(r.refused?.message).not.toContain('AKIA');
    expect(r.upstream).toBeUndefined();
    expect(r.audit).toMatchObject({
      outcome: 'rejected',
      error: { code: 'content_blocked', rule_id: 'dlp.AWS_ACCESS_KEY' },
    });
  });

  it('finds a secret hidden with zero-width characters', async () => {
    const r = await run(chat('AKIA\u200bABCDEFGH\u200dIJKLMNOP'), { AWS_ACCESS_KEY: 'block' });
    expect(r.refused).toMatchObject({ code: 'content_blocked' });
  });

  it('pseudonymises with one stable placeholder per value within the request', async () => {
    const r = await run(chat('a@x.io, b@y.io and a@x.io again'), { EMAIL: 'pseudonymise' });
    expect(r.upstream?.body).toBe(JSON.stringify(chat('[EMAIL_1], [EMAIL_2] and [EMAIL_1] again')));
  });

  it('masks, keeping a suffix, and only records a warn', async () => {
    const masked = await run(chat('ssn 123-45-6789'), { US_SSN: 'mask' });
    expect(masked.upstream?.body).toBe(JSON.stringify(chat('ssn *******6789')));
    const warned = await run(chat('ssn 123-45-6789'), { US_SSN: 'warn' });
    expect(warned.upstream?.body).toBeUndefined();
    expect(warned.audit.dlp?.findings).toMatchObject([{ type: 'US_SSN', action: 'warn' }]);
    expect(warned.ctx.dataClasses).toEqual(new Set(['PII']));
  });

  const places: [string, unknown][] = [
    ['a content part', chat([{ type: 'text', text: 'to a@x.io' }])],
    [
      'a tool definition',
      { ...chat('hi'), tools: [{ type: 'function', function: { name: 'f', description: 'cc a@x.io' } }] },
    ],
    [
      'tool-call arguments',
      {
        model: 'm',
        messages: [
          {
            role: 'assistant',
            tool_calls: [{ id: '1', type: 'function', function: { name: 'f', arguments: '{"to":"a@x.io"}' } }],
          },
        ],
      },
    ],
  ];
  for (const [where, body] of places) {
    it(`scans ${where}`, async () => {
      const r = await run(body, { EMAIL: 'redact' });
      expect(r.upstream?.body).toContain('[REDACTED:EMAIL]');
      expect(r.upstream?.body).not.toContain('a@x.io');
    });
  }

  it('splices inside escaped and multi-byte strings without breaking the JSON', async () => {
    const body = `{"model":"m","messages":[{"role":"user","content":"\\"q\\" 世界\\n\\u0061@x.io 😀"}]}`;
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: [stage({ EMAIL: 'pseudonymise' })],
      request: { path: '/v1/chat/completions', body },
    });
    expect(JSON.parse(r.upstream!.body!).messages[0].content).toBe('"q" 世界\n[EMAIL_1] 😀');
  });

  it('leaves the model, roles and base64 data URLs (inline media) alone', async () => {
    // The image's base64 happens to read as an access key; the model names an address. The second
    // body escapes the slashes as some JSON encoders do (\\/).
    const json = JSON.stringify(
      chat([{ type: 'image_url', image_url: { url: 'data:image/png;base64,AKIAIOSFODNN7ABCDEFG/+=' } }], {
        model: 'a@x.io',
      }),
    );
    for (const body of [json, json.replaceAll('/', '\\/')]) {
      const r = await run(body, { EMAIL: 'block', AWS_ACCESS_KEY: 'block' });
      expect(r.refused).toBeUndefined();
    }
  });

  describe('member names (a tool schema’s property names are text the model reads)', () => {
    const withTool = (name: string) =>
      chat('hi', {
        tools: [
          {
            type: 'function',
            function: { name: 'send', parameters: { type: 'object', properties: { [name]: { type: 'string' } } } },
          },
        ],
      });

    it.each(['redact', 'pseudonymise', 'block'] as const)(
      'a value in a name is refused whatever the action (%s): a name cannot be rewritten',
      async (action) => {
        const r = await run(withTool('to jane.doe@example.com'), { EMAIL: action });
        expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.EMAIL' });
        expect(r.upstream).toBeUndefined();
        expect(r.audit.dlp?.findings).toEqual([
          {
            type: 'EMAIL',
            action: 'block',
            where: 'request',
            path: 'tools[0].function.parameters.properties.{key}',
            start: 3,
            end: 23,
          },
        ]);
        // The audit never holds the value, also not as part of a path.
        expect(JSON.stringify(r.audit)).not.toContain('jane.doe');
      },
    );

    it('no audit path spells a name with a finding, also where a value under it has one', async () => {
      const body = chat('hi', { metadata: { 'jane.doe@example.com': { note: 'ssn 212-67-4391' } } });
      const r = await run(body, { EMAIL: 'block', US_SSN: 'redact' });
      expect(r.refused).toMatchObject({ ruleId: 'dlp.EMAIL' });
      expect(r.audit.dlp?.findings.map((f) => [f.type, f.path])).toEqual([
        ['US_SSN', 'metadata.{key}.note'],
        ['EMAIL', 'metadata.{key}'],
      ]);
      expect(JSON.stringify(r.audit)).not.toContain('jane.doe');
    });

    it.each([
      ['a role', { role: 'jane.doe@example.com', content: 'hi' }, 'messages[1].role'],
      [
        'a tool call’s id',
        { role: 'tool', tool_call_id: 'call jane.doe@example.com', content: 'ok' },
        'messages[1].tool_call_id',
      ],
      [
        'a content part’s type',
        { role: 'user', content: [{ type: 'jane.doe@example.com', text: 'x' }] },
        'messages[1].content[0].type',
      ],
    ])(
      '%s (the protocol needs it intact; a template may print it) is scanned, and a finding refuses',
      async (_, message, path) => {
        const body = { model: 'm', messages: [{ role: 'system', content: 'be brief' }, message] };
        const r = await run(body, { EMAIL: 'redact' });
        expect(r.refused).toMatchObject({ ruleId: 'dlp.EMAIL' });
        expect(r.audit.dlp?.findings).toMatchObject([{ type: 'EMAIL', action: 'block', path }]);
      },
    );

    it('inside a tool call’s arguments object (Ollama) a value under id or type is the model’s text: redacted, not refused', async () => {
      const call = { function: { name: 'send', arguments: { id: 'jane.doe@example.com', type: ['a@x.io'] } } };
      const body = {
        model: 'm',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: '', tool_calls: [call] },
        ],
      };
      const r = await run(body, { EMAIL: 'redact' });
      expect(r.refused).toBeUndefined();
      const sent = JSON.parse(r.upstream!.body!).messages[1].tool_calls[0].function.arguments;
      expect(sent).toEqual({ id: '[REDACTED:EMAIL]', type: ['[REDACTED:EMAIL]'] });
    });

    it('a number in a tool call’s arguments object is the model’s text too: a card given as a number is redacted', async () => {
      const call = { function: { name: 'pay', arguments: { card: 4111111111111111, cents: 1999 } } };
      const body = {
        model: 'm',
        max_tokens: 4111111111111111,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: '', tool_calls: [call] },
        ],
      };
      const r = await run(body, { CREDIT_CARD: 'redact' });
      const sent = JSON.parse(r.upstream!.body!);
      expect(sent.messages[1].tool_calls[0].function.arguments).toEqual({
        card: '[REDACTED:CREDIT_CARD]',
        cents: 1999,
      });
      // Outside such an object a number is the protocol's (a parameter), never rewritten.
      expect(sent.max_tokens).toBe(4111111111111111);
    });

    it('warn records a value in a name and forwards the body as it is', async () => {
      const r = await run(withTool('jane.doe@example.com'), { EMAIL: 'warn' });
      expect(r.refused).toBeUndefined();
      expect(r.audit.dlp?.findings).toMatchObject([
        { type: 'EMAIL', action: 'warn', path: 'tools[0].function.parameters.properties.{key}' },
      ]);
    });

    it('a name written with escapes is decoded before it is scanned', async () => {
      const body = JSON.stringify(withTool('KEY')).replace('"KEY"', '"AKIA\\u0051BCDEFGHIJKLMNOP"');
      const r = await run(body, { AWS_ACCESS_KEY: 'block' });
      expect(r.refused).toMatchObject({ ruleId: 'dlp.AWS_ACCESS_KEY' });
    });
  });

  it.each([
    ['a text that begins with data:', 'data: mail a@x.io'],
    ['a data URL of plain text', 'data:text/plain,a@x.io'],
    ['a base64 data URL followed by text', 'data:image/png;base64,QUJD a@x.io'],
  ])('scans %s', async (_, content) => {
    const r = await run(chat([{ type: 'text', text: content }]), { EMAIL: 'block' });
    expect(r.refused).toMatchObject({ ruleId: 'dlp.EMAIL' });
  });

  it.each([
    ['/v1/completions', { model: 'm', prompt: [9906, 1917] }, 'prompt'],
    ['/v1/completions', { model: 'm', prompt: ['hi', [9906]] }, 'prompt'],
    ['/v1/completions', { model: 'm', prompt: 'x', prompt_embeds: 'AAAA' }, 'prompt_embeds'],
    ['/v1/embeddings', { model: 'm', input: [[1, 2]] }, 'input'],
    ['/api/generate', { model: 'l', prompt: 'go on', context: [1, 2, 3] }, 'context'],
  ])('refuses model input given as token ids or embeddings, which no scan reads: %s %j', async (path, body, param) => {
    const r = await runStage({
      stages: ['llm.api_shape'],
      extraStages: [stage({ EMAIL: 'redact' })],
      request: { path, body },
    });
    expect(r.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.token_input', param });
    expect(r.upstream).toBeUndefined();
  });

  it('covers completions prompts, embeddings input and Ollama chat', async () => {
    for (const [path, body] of [
      ['/v1/completions', { model: 'm', prompt: ['x', 'to a@x.io'] }],
      ['/v1/embeddings', { model: 'm', input: 'a@x.io' }],
      ['/api/chat', { model: 'm', messages: [{ role: 'user', content: 'a@x.io' }] }],
      ['/api/generate', { model: 'm', prompt: 'a@x.io', system: 'b@y.io' }],
    ] as const) {
      const r = await runStage({
        stages: ['llm.api_shape'],
        extraStages: [stage({ EMAIL: 'block' })],
        request: { path, body },
      });
      expect(r.refused, path).toMatchObject({ code: 'content_blocked' });
    }
  });

  it('fails closed when the scanner throws, or lets through and says so when told to', async () => {
    const closed = await run(chat('boom'), {}, {}, 'boom');
    expect(closed.refused).toMatchObject({ status: 403, code: 'content_blocked', ruleId: 'dlp.scan_error' });
    const open = await run(chat('boom'), {}, { onScanError: 'allow' }, 'boom');
    expect(open.refused).toBeUndefined();
    expect(open.audit.dlp?.failed_open).toBe('request scan error');
  });

  it('fails closed when the scan runs past its budget', async () => {
    const r = await run(chat('x'.repeat(10)), {}, { scanBudgetMs: -1 });
    expect(r.refused).toMatchObject({ code: 'content_blocked', ruleId: 'dlp.scan_budget' });
  });

  it('counts findings by type, action and where', async () => {
    const r = await run(chat('a@x.io b@y.io'), { EMAIL: 'redact' });
    const m = await r.metrics.registry.getSingleMetricAsString('lmgate_dlp_findings_total');
    expect(m).toContain('lmgate_dlp_findings_total{type="EMAIL",action="redact",where="request"} 2');
  });
});

describe('dlp.request on compressed bodies (dlp.compressedRequests)', () => {
  const body = Buffer.from(JSON.stringify(chat('my ssn is 123-45-6789')));
  const gz = gzipSync(body);
  const send = (config: Record<string, unknown>, payload: Buffer, encoding = 'gzip') =>
    runStage({
      stages: ['llm.api_shape'],
      config,
      extraStages: [stage({ US_SSN: 'redact' })],
      request: { path: '/v1/chat/completions', headers: { 'content-encoding': encoding }, body: payload },
    });

  it('refuses a gzip body with 415 by default, forwarding nothing', async () => {
    const r = await send({}, gz);
    expect(r.refused).toMatchObject({ status: 415, code: 'unsupported_content_encoding' });
    expect(r.upstream).toBeUndefined();
  });

  it('inspects it decompressed when told to, and forwards the inspected body without the coding', async () => {
    for (const [encoding, payload] of [
      ['gzip', gz],
      ['deflate', deflateSync(body)],
      ['br', brotliCompressSync(body)],
    ] as const) {
      const r = await send({ dlp: { compressedRequests: 'inspect' } }, payload, encoding);
      expect(r.upstream?.body, encoding).toBe(JSON.stringify(chat('my ssn is [REDACTED:US_SSN]')));
      expect(r.upstream?.removed).toContain('content-encoding');
      expect(r.audit.dlp?.findings).toMatchObject([{ type: 'US_SSN', where: 'request' }]);
    }
  });

  it('forwards a clean compressed body decompressed, never the compressed bytes', async () => {
    const clean = Buffer.from(JSON.stringify(chat('hello')));
    const r = await send({ dlp: { compressedRequests: 'inspect' } }, gzipSync(clean));
    expect(r.upstream?.body).toBe(clean.toString());
  });

  it('refuses a decompression bomb (413) and data that is not what it says (415)', async () => {
    const bomb = gzipSync(Buffer.from(JSON.stringify(chat('a'.repeat(2_000_000)))));
    const r = await send({ dlp: { compressedRequests: 'inspect', maxDecompressedBytes: 100_000 } }, bomb);
    expect(r.refused).toMatchObject({ status: 413, code: 'request_too_large' });
    const bad = await send({ dlp: { compressedRequests: 'inspect' } }, Buffer.from('not gzip'));
    expect(bad.refused).toMatchObject({ status: 415, code: 'unsupported_content_encoding' });
  });
});

describe('the audit keeps at most 100 findings, and counts the rest', () => {
  it('a body with 150 addresses: 100 listed, 50 counted', async () => {
    const many = Array.from({ length: 150 }, (_, i) => `u${i}@x.io`).join(' ');
    const r = await run(chat(many), { EMAIL: 'redact' });
    expect(r.audit.dlp?.findings).toHaveLength(100);
    expect(r.audit.dlp?.findings_dropped).toBe(50);
  });
});
