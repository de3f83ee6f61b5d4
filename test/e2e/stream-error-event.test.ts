// A stage ends a stream mid-way with an error event, through real Envoy, and the official openai
// client raises it. The guard here stands in for a response-side content rule (DLP): it reads the
// events the gate's one response reader decodes and stops the stream at the first forbidden text.

import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refuse } from '../../extproc/pipeline/errors.ts';
import { defineStage } from '../../extproc/pipeline/stage.ts';
import { type Envoy, renderEnvoyConfig, startEnvoy } from '../harness/envoy.ts';
import { makeKey } from '../harness/gate.ts';
import { type InProcessGate, startInProcessGate } from '../harness/in-process-gate.ts';
import { freePort } from '../harness/ports.ts';
import { tempDir } from '../harness/temp-dirs.ts';
import { type MockModel, startMockModel } from '../mock/model-server.ts';

const alice = makeKey('alice', { tenant: 'acme', models: ['mock-*'] });

const guard = defineStage({
  name: 'test.stream_guard',
  summary: 'ends a streamed answer at the first text containing §',
  needs: ['parsed'],
  provides: [],
  always: true,
  create: () => ({
    onResponseHeaders: (ctx) => ctx.readResponseBody({ events: true }),
    onResponseEvent: (ctx, event) => {
      if (event.texts.some((t) => t.text.includes('§')))
        ctx.endResponseStream(
          refuse('content_blocked', 'The response was stopped: it contained a secret.', { ruleId: 'test.secrets' }),
        );
    },
  }),
});

let mock: MockModel;
let gate: InProcessGate;
let envoy: Envoy;
beforeAll(async () => {
  mock = await startMockModel({ chunks: 5, chunkDelayMs: 20 });
  gate = await startInProcessGate([alice], { extraStages: [guard] });
  const ports = { listener: await freePort(), admin: await freePort(), gate: gate.server.grpcPort, model: mock.port };
  const dir = await tempDir('lm-gate-envoy-');
  envoy = await startEnvoy(await renderEnvoyConfig(ports, join(dir, 'envoy.yaml')), ports);
});
afterAll(async () => {
  await envoy?.stop();
  await gate?.stop();
  await mock?.close();
});

const client = () => new OpenAI({ baseURL: `${envoy.url}/v1`, apiKey: alice.key, maxRetries: 0 });

describe('a stage ends a stream with an error event', () => {
  it('the openai client raises it after the text that came before, and nothing after reaches the client', async () => {
    const before = (await gate.auditRecords()).length;
    const stream = await client().chat.completions.create(
      { model: 'mock-small', messages: [{ role: 'user', content: 'tell me' }], stream: true },
      // The mock spreads the reply over its chunks by code point: § lands whole in the third.
      { headers: { 'x-mock-content': 'one two § three four' } },
    );
    let text = '';
    const err = await (async () => {
      for await (const part of stream) text += part.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('content_blocked');
    expect((err as Error).message).toContain('it contained a secret');
    expect(text).not.toContain('§');
    expect(text).not.toContain('four');
    expect(text.length).toBeGreaterThan(0);

    const rec = (await gate.waitAudit(before + 1)).at(-1)!;
    // The client saw a 200 and then the error event: the record says exactly that.
    expect(rec).toMatchObject({
      status: 200,
      outcome: 'rejected',
      error: { code: 'content_blocked', rule_id: 'test.secrets' },
    });
  });

  it('a stream without the forbidden text passes whole, byte for byte', async () => {
    const stream = await client().chat.completions.create(
      { model: 'mock-small', messages: [{ role: 'user', content: 'tell me' }], stream: true },
      { headers: { 'x-mock-content': 'nothing to see here' } },
    );
    let text = '';
    for await (const part of stream) text += part.choices[0]?.delta.content ?? '';
    expect(text).toBe('nothing to see here');
  });
});
