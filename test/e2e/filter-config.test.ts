// Envoy filter settings the gate cannot work with, through the real binary: the gate reads them
// from protocol_config, refuses what it cannot govern (rather than letting a body it never saw
// through), and says so in /readyz, in a metric and in the audit record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extProcFilter } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });

const chat = (stack: Stack, id: string) =>
  fetch(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi' }] }),
  });

const readyz = async (stack: Stack) => (await fetch(`http://127.0.0.1:${stack.gate.adminPort}/readyz`)).text();

describe('request_body_mode: NONE', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      editEnvoy: (cfg) => {
        extProcFilter(cfg).processing_mode.request_body_mode = 'NONE';
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('an LLM call is refused before its body goes upstream, and the problem is reported', async () => {
    const res = await chat(stack, 'filter-none-1');
    expect(res.status).toBe(500);
    expect(((await res.json()) as any).error.code).toBe('internal_error');
    expect(stack.mock.received.filter((r) => r.headers['x-request-id'] === 'filter-none-1')).toHaveLength(0);
    const rec = await stack.gate.auditFor('filter-none-1');
    expect(rec).toMatchObject({ status: 500, outcome: 'error' });
    expect(rec.failure).toMatch(/request_body_mode is NONE/);
    expect(await readyz(stack)).toMatch(/^ready\nwarning: request_body_none: /);
    expect(await stack.gate.metrics()).toMatch(/lmgate_envoy_filter_config_problems\{problem="request_body_none"\} 1/);
  });

  it('a request without a body still works', async () => {
    const res = await fetch(`${stack.baseURL}/models`, { headers: { authorization: `Bearer ${alice.key}` } });
    expect(res.status).toBe(200);
  });
});

describe('send_body_without_waiting_for_header_response (Envoy then ignores mode_override)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      editEnvoy: (cfg) => {
        const f = extProcFilter(cfg);
        f.processing_mode.request_body_mode = 'STREAMED';
        f.send_body_without_waiting_for_header_response = true;
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('requests are still judged whole, and /readyz warns that responses cannot be metered', async () => {
    const res = await chat(stack, 'filter-swh-1');
    expect(res.status).toBe(200);
    const upstream = stack.mock.received.find((r) => r.headers['x-request-id'] === 'filter-swh-1');
    expect(upstream?.json).toMatchObject({ model: 'mock-small' });
    expect(await readyz(stack)).toMatch(/warning: send_body_without_waiting: /);
  });
});

describe('request_body_mode: FULL_DUPLEX_STREAMED with response_body_mode left at NONE', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      keys: [alice],
      editEnvoy: (cfg) => {
        const f = extProcFilter(cfg);
        f.processing_mode.request_body_mode = 'FULL_DUPLEX_STREAMED';
        f.processing_mode.request_trailer_mode = 'SEND';
        f.processing_mode.response_body_mode = 'NONE';
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('the request is still judged and answered; the unread response and the setting are reported', async () => {
    const res = await chat(stack, 'filter-duplex-1');
    expect(res.status).toBe(200);
    const rec = await stack.gate.auditFor('filter-duplex-1');
    expect(rec).toMatchObject({
      status: 200,
      outcome: 'completed',
      gen_ai: { request: { model: 'mock-small' }, usage: null },
    });
    expect(rec.failure).toMatch(/response not read: .*response_body_mode NONE/);
    expect(await readyz(stack)).toMatch(/warning: request_body_full_duplex: .*Set response_body_mode: STREAMED/);
    expect(await stack.gate.metrics()).toMatch(
      /lmgate_envoy_filter_config_problems\{problem="request_body_full_duplex"\} 1/,
    );
  });

  it('a forbidden model is refused before its body goes upstream', async () => {
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${alice.key}`,
        'content-type': 'application/json',
        'x-request-id': 'filter-duplex-2',
      },
      body: JSON.stringify({ model: 'other-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(403);
    expect(stack.mock.received.filter((r) => r.headers['x-request-id'] === 'filter-duplex-2')).toHaveLength(0);
  });
});
