// With the shipped envoy/envoy.yaml, Envoy closes each ext_proc stream gracefully when its
// request ends instead of resetting it: a reset costs the gate an Error with a stack per request
// (Node's HTTP/2), about 9% of a governed gate's CPU at 500 req/s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ keys: [alice] });
});
afterAll(() => stack?.stop());

const resets = async () =>
  (await stack.gate.metrics())
    .split('\n')
    .filter((l) => l.startsWith('lmgate_ext_proc_stream_resets_total{'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);

describe('ext_proc stream close', () => {
  it('completed requests leave no reset stream behind', async () => {
    const body = JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi' }] });
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
        body,
      });
      expect(r.status).toBe(200);
      await r.text();
    }
    // Envoy closes its side once the request is over; give it a moment.
    await new Promise((r) => setTimeout(r, 300));
    expect(await resets()).toBe(0);
  });
});
