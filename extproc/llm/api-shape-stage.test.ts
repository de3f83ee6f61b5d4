// llm.api_shape decision table, through the real state machine (runStage): what the model server
// parses is what the stages judged, so every ambiguity is refused before a byte goes upstream.
import { describe, expect, it } from 'vitest';
import { jwtPrincipal, runStage, type StageRun } from '../../test/harness/run-stage.ts';

interface Row {
  name: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  expect: (run: StageRun) => void;
}

const refused = (status: number, code: string, param?: string | null) => (run: StageRun) => {
  expect(run.refused).toMatchObject({ status, code, ...(param !== undefined ? { param } : {}) });
  expect(run.upstream).toBeUndefined();
};

const rows: Row[] = [
  {
    name: 'a well-formed chat request sets the model and streaming flag later stages read',
    body: '{"model":"mock-small","messages":[],"stream":true}',
    expect: (run) => {
      expect(run.refused).toBeUndefined();
      expect([run.ctx.modelRequested, run.ctx.stream]).toEqual(['mock-small', true]);
      expect(run.upstream?.body).toBeUndefined(); // forwarded as sent
    },
  },
  {
    name: 'a repeated key is refused: servers disagree on which one wins',
    body: '{"model":"mock-small","model":"mock-large","messages":[]}',
    expect: refused(400, 'duplicate_key', 'model'),
  },
  {
    name: 'keys differing only in case are refused: Go servers match them case-insensitively',
    body: '{"model":"mock-small","MODEL":"mock-large","messages":[]}',
    expect: refused(400, 'ambiguous_key'),
  },
  { name: 'a body that is not JSON is refused', body: '{"model":', expect: refused(400, 'invalid_json') },
  {
    name: 'nesting deeper than server.maxJsonDepth is refused without a recursive parse',
    body: `{"model":"m","messages":${'['.repeat(100)}${']'.repeat(100)}}`,
    expect: refused(400, 'json_too_deep'),
  },
  {
    name: 'invalid UTF-8 is refused',
    body: Buffer.concat([Buffer.from('{"model":"m'), Buffer.from([0xff]), Buffer.from('","messages":[]}')]),
    expect: refused(400, 'invalid_utf8'),
  },
  {
    name: 'a missing model is refused naming the parameter',
    body: '{"messages":[]}',
    expect: refused(400, 'invalid_request', 'model'),
  },
  {
    name: 'a compressed body is refused with 415 before it is read',
    headers: { 'content-encoding': 'gzip' },
    body: '{}',
    expect: refused(415, 'unsupported_content_encoding'),
  },
  {
    name: 'a charset other than UTF-8 is refused with 415',
    headers: { 'content-type': 'application/json; charset=latin1' },
    body: '{}',
    expect: refused(415, 'unsupported_charset'),
  },
  {
    name: 'a second charset parameter is read too: any but UTF-8 is refused with 415',
    headers: { 'content-type': 'application/json; charset=utf-8; charset=utf-16' },
    body: '{}',
    expect: refused(415, 'unsupported_charset'),
  },
  {
    name: 'a UTF-8 byte order mark is removed from the forwarded body, and the change is recorded',
    body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"model":"m","messages":[]}')]),
    expect: (run) => {
      expect(run.upstream?.body).toBe('{"model":"m","messages":[]}');
      expect(run.upstream?.set['content-length']).toBe('27');
      expect(run.audit.decisions).toContainEqual(
        expect.objectContaining({ rule_id: 'llm.utf8_bom', effect: 'modify' }),
      );
    },
  },
  {
    name: 'upstream is asked not to compress the response the gate reads',
    headers: { 'accept-encoding': 'gzip, br' },
    body: '{"model":"m","messages":[]}',
    expect: (run) => expect(run.upstream?.removed).toContain('accept-encoding'),
  },
  {
    name: 'a body on a path that is no LLM API is not this stage’s to judge',
    path: '/internal/upload',
    body: 'not json at all',
    expect: (run) => expect(run.refused).toBeUndefined(),
  },
];

describe('llm.api_shape', () => {
  for (const row of rows) {
    it(row.name, async () => {
      row.expect(
        await runStage({
          stages: ['llm.api_shape'],
          config: { policy: { unknownEndpoints: 'allow' } },
          request: { path: row.path ?? '/v1/chat/completions', headers: row.headers ?? {}, body: row.body ?? '' },
        }),
      );
    });
  }

  it('an LLM call without a body is refused', async () => {
    const run = await runStage({
      stages: ['llm.api_shape'],
      request: { method: 'POST', path: '/v1/chat/completions' },
    });
    expect(run.refused).toMatchObject({ status: 400, code: 'empty_body' });
  });

  it("TGI's /generate ignores the stream flag its compat routes read: the request is judged as what it gets", async () => {
    const streamed = async (path: string, body: Record<string, unknown> = { inputs: 'x', stream: true }) => {
      const run = await runStage({ stages: ['llm.api_shape'], request: { path, body } });
      expect(run.refused).toBeUndefined();
      return run.audit.stream;
    };
    expect(await streamed('/generate')).toBe(false);
    expect(await streamed('/generate/')).toBe(false);
    expect(await streamed('/')).toBe(true);
    expect(await streamed('/invocations')).toBe(true);
    expect(await streamed('/generate_stream')).toBe(true);
    expect(await streamed('/v1/completions', { model: 'm', prompt: 'x', stream: true })).toBe(true);
  });
});

describe('llm.api_shape: policy.defaultMaxTokens written into a request that sets no output limit', () => {
  const table: [name: string, path: string, body: string, forwarded: string | undefined][] = [
    [
      'OpenAI chat without one',
      '/v1/chat/completions',
      '{"model":"m","messages":[]}',
      '{"max_tokens":256,"model":"m","messages":[]}',
    ],
    [
      'OpenAI max_tokens null',
      '/v1/completions',
      '{"model":"m","prompt":"x","max_tokens":null}',
      '{"model":"m","prompt":"x","max_tokens":256}',
    ],
    ['OpenAI with one of its own', '/v1/chat/completions', '{"model":"m","messages":[],"max_tokens":10}', undefined],
    [
      'Ollama without options',
      '/api/chat',
      '{"model":"l","messages":[]}',
      '{"options":{"num_predict":256},"model":"l","messages":[]}',
    ],
    [
      'Ollama options null',
      '/api/generate',
      '{"model":"l","options":null}',
      '{"model":"l","options":{"num_predict":256}}',
    ],
    [
      'Ollama empty options',
      '/api/generate',
      '{"model":"l","options":{ }}',
      '{"model":"l","options":{"num_predict":256 }}',
    ],
    [
      'Ollama other options',
      '/api/generate',
      '{"model":"l","options":{"seed":1}}',
      '{"model":"l","options":{"num_predict":256,"seed":1}}',
    ],
    [
      'Ollama num_predict -1 (no limit)',
      '/api/chat',
      '{"model":"l","messages":[],"options":{"num_predict":-1}}',
      '{"model":"l","messages":[],"options":{"num_predict":256}}',
    ],
    ['Ollama with one of its own', '/api/chat', '{"model":"l","messages":[],"options":{"num_predict":5}}', undefined],
    ['TGI without parameters', '/generate', '{"inputs":"x"}', '{"parameters":{"max_new_tokens":256},"inputs":"x"}'],
    [
      'TGI parameters without it',
      '/generate_stream',
      '{"inputs":"x","parameters":{"seed":2}}',
      '{"inputs":"x","parameters":{"max_new_tokens":256,"seed":2}}',
    ],
    ['embeddings generate nothing', '/v1/embeddings', '{"model":"e","input":"x"}', undefined],
  ];
  for (const [name, path, body, forwarded] of table)
    it(name, async () => {
      const run = await runStage({
        stages: ['llm.api_shape'],
        config: { policy: { defaultMaxTokens: 256 } },
        request: { path, body },
      });
      expect(run.refused).toBeUndefined();
      expect(run.upstream?.body).toBe(forwarded);
      if (forwarded !== undefined) {
        // What goes upstream is one valid JSON object with the limit in it.
        expect(JSON.parse(run.upstream!.body!)).toBeTypeOf('object');
        expect(run.ctx.parsed?.maxTokens).toBe(256);
        expect(run.audit.decisions).toContainEqual(
          expect.objectContaining({ rule_id: 'policy.defaultMaxTokens', effect: 'modify' }),
        );
      }
    });

  it('beside the stream_options metering inserts at the same place, the body stays one valid JSON object', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'metering.usage'],
      config: { policy: { defaultMaxTokens: 256 } },
      request: { path: '/v1/chat/completions', body: '{"model":"m","messages":[],"stream":true}' },
    });
    expect(JSON.parse(run.upstream!.body!)).toEqual({
      max_tokens: 256,
      stream_options: { include_usage: true },
      model: 'm',
      messages: [],
      stream: true,
    });
  });

  it('a cap rule admits such a request, judged at the limit it now carries', async () => {
    const run = await runStage({
      stages: ['llm.api_shape', 'policy.rules'],
      given: { principal: jwtPrincipal() },
      config: {
        policy: {
          defaultMaxTokens: 1024,
          rules: [
            { id: 'cap', action: 'DENY', when: 'request.max_tokens > 4096' },
            { id: 'all', action: 'ALLOW' },
          ],
        },
      },
      request: { path: '/v1/chat/completions', body: '{"model":"m","messages":[]}' },
    });
    expect(run.refused).toBeUndefined();
    expect(JSON.parse(run.upstream!.body!).max_tokens).toBe(1024);
  });

  it('unset, the request goes as sent', async () => {
    const run = await runStage({
      stages: ['llm.api_shape'],
      request: { path: '/v1/chat/completions', body: '{"model":"m","messages":[]}' },
    });
    expect(run.upstream?.body).toBeUndefined();
    expect(run.ctx.parsed?.maxTokens).toBeUndefined();
  });
});
