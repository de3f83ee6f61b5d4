// audit.durability strict over a real gRPC stream: the gate gives a request's last answer (the
// refusal, the response headers, the last body chunk) only once the request's audit record is
// in the file and fsynced. Read the file the moment the answer arrives: the record is there.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatBody,
  chatHeadersFor,
  requestBody,
  requestHeaders,
  responseBody,
  responseHeaders,
  sse,
} from '../harness/ext-proc-client.ts';
import { makeKey } from '../harness/gate.ts';
import { type InProcessGate, startInProcessGate } from '../harness/in-process-gate.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
let g: InProcessGate;

beforeAll(async () => {
  g = await startInProcessGate([alice], { extra: { audit: { durability: 'strict' } } });
  await g.audit.open();
});
afterAll(async () => {
  await g?.stop();
});

/** The request ids in the audit file right now (read synchronously: no turn passes). */
const inFileNow = (): string[] =>
  readFileSync(g.config.audit.path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'request')
    .map((r) => r.request_id);

describe('audit.durability strict', () => {
  it('a refusal is answered only once its record is in the file', async () => {
    const h = chatHeadersFor('lmg_nobody_wrongsecret');
    const s = g.client.open();
    const a = await s.exchange(requestHeaders(h));
    expect(a.immediateResponse?.status.code).toBe(401);
    expect(inFileNow()).toContain(h['x-request-id']);
    s.end();
  });

  it('a non-streamed answer: the response headers wait for the record', async () => {
    const h = chatHeadersFor(alice.key);
    const s = g.client.open();
    await s.exchange(requestHeaders(h));
    await s.exchange(requestBody(chatBody()));
    const body = JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      model: 'mock-small',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 },
    });
    const rh = await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
    expect(inFileNow()).not.toContain(h['x-request-id']);
    if (rh.modeOverride?.responseBodyMode) {
      const last = await s.exchange(responseBody(body, true));
      expect(last.response).toBe('responseBody');
    }
    expect(inFileNow()).toContain(h['x-request-id']);
    s.end();
  });

  it('a stream: the last chunk waits for the record, earlier chunks do not', async () => {
    const h = chatHeadersFor(alice.key);
    const s = g.client.open();
    await s.exchange(requestHeaders(h));
    await s.exchange(requestBody(chatBody({ stream: true })));
    await s.exchange(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
    const chunk = { id: 'c', object: 'chat.completion.chunk', model: 'mock-small', choices: [] };
    await s.exchange(responseBody(sse(chunk)));
    expect(inFileNow()).not.toContain(h['x-request-id']);
    const last = await s.exchange(responseBody('data: [DONE]\n\n', true));
    expect(last.response).toBe('responseBody');
    expect(inFileNow()).toContain(h['x-request-id']);
    s.end();
  });
});
