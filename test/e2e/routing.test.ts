// Routing through real Envoy: the gate names a route, Envoy's route table (envoy/envoy.yaml)
// picks the cluster. Two mock model servers stand behind the two clusters; what each received
// shows where every request went, with which model name and which credential.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';
import { tempDir } from '../harness/temp-dirs.ts';
import type { MockModel } from '../mock/model-server.ts';

const alice = makeKey('alice', { tenant: 'acme' });
let stack: Stack;
let small: MockModel;
let large: MockModel;

beforeAll(async () => {
  process.env.LMGATE_E2E_SMALL_KEY = 'small-server-secret';
  const secrets = await tempDir('lm-gate-routing-');
  const largeKeyFile = join(secrets, 'large-key');
  await writeFile(largeKeyFile, 'large-server-secret\n');
  stack = await startStack({
    keys: [alice],
    largeMock: true,
    gateExtra: {
      routing: {
        dataClassesHeader: 'x-data-classes',
        default: 'small',
        aliases: { 'gpt-4o': 'mock-large' },
        routes: [
          { name: 'small', models: ['mock-small'], credential: { from: 'env:LMGATE_E2E_SMALL_KEY' } },
          {
            name: 'hipaa',
            models: ['mock-large', 'mock-small'],
            dataClasses: ['phi'],
            credential: { from: `file:${largeKeyFile}`, header: 'api-key', prefix: '' },
          },
        ],
      },
    },
  });
  small = stack.mock;
  large = stack.mockLarge!;
});
afterAll(async () => {
  await stack?.stop();
});

const client = (headers: Record<string, string> = {}) =>
  new OpenAI({ baseURL: stack.baseURL, apiKey: alice.key, maxRetries: 0, defaultHeaders: headers });

async function chat(model: string, headers: Record<string, string> = {}) {
  small.reset();
  large.reset();
  const res = await client(headers)
    .chat.completions.create({ model, messages: [{ role: 'user', content: 'where do I go?' }] })
    .withResponse();
  // Envoy does not echo x-request-id to the client; the server that got the request has it.
  const got = [...small.received, ...large.received][0];
  const id = res.response.headers.get('x-request-id') ?? (got?.headers['x-request-id'] as string);
  return { data: res.data, record: await stack.gate.auditFor(id) };
}

describe('routing through real Envoy', () => {
  it('a model goes to its route, with that route’s credential and without the client’s', async () => {
    const { record } = await chat('mock-small');
    expect(large.received).toHaveLength(0);
    expect(small.received).toHaveLength(1);
    const got = small.received[0]!;
    expect(got.headers.authorization).toBe('Bearer small-server-secret');
    expect(JSON.stringify(got.headers)).not.toContain(alice.key);
    expect(got.headers['x-lmgate-route']).toBe('small');
    expect(record).toMatchObject({ route: 'small', status: 200 });
  });

  it('an alias reaches only the hipaa cluster, the body rewritten to the target model', async () => {
    const { data, record } = await chat('gpt-4o');
    expect(small.received).toHaveLength(0);
    expect(large.received).toHaveLength(1);
    const got = large.received[0]!;
    expect(got.json).toMatchObject({ model: 'mock-large' });
    expect(got.headers['api-key']).toBe('large-server-secret');
    expect(got.headers.authorization).toBeUndefined();
    expect(data.model).toBe('mock-large');
    expect(record).toMatchObject({
      route: 'hipaa',
      gen_ai: { request: { model: 'gpt-4o' }, response: { model: 'mock-large' } },
      upstream_model: 'mock-large',
    });
  });

  it('a request declaring PHI goes only to the route that may receive it', async () => {
    const { record } = await chat('mock-small', { 'x-data-classes': 'phi' });
    expect(small.received).toHaveLength(0);
    expect(large.received).toHaveLength(1);
    expect(large.received[0]!.headers['x-data-classes']).toBeUndefined();
    expect(record).toMatchObject({ route: 'hipaa' });
  });

  it('a model no route serves is 404 model_not_found, and nothing reaches either server', async () => {
    small.reset();
    large.reset();
    const err = await client()
      .chat.completions.create({ model: 'gpt-5', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect(small.received.length + large.received.length).toBe(0);
  });

  it('a client cannot choose the cluster with its own x-lmgate-route', async () => {
    const { record } = await chat('mock-small', { 'x-lmgate-route': 'hipaa' });
    expect(large.received).toHaveLength(0);
    expect(small.received).toHaveLength(1);
    expect(record).toMatchObject({ route: 'small' });
  });

  it('a model listing takes the default route at its headers', async () => {
    small.reset();
    large.reset();
    const models = await client().models.list();
    expect(models.data.length).toBeGreaterThan(0);
    expect(large.received).toHaveLength(0);
    expect(small.received[0]?.headers.authorization).toBe('Bearer small-server-secret');
  });
});

describe('without routing, a spoofed route header still picks nothing', () => {
  let plain: Stack;
  beforeAll(async () => {
    plain = await startStack({ keys: [alice], largeMock: true });
  });
  afterAll(async () => {
    await plain?.stop();
  });

  it('x-lmgate-route: hipaa from a client lands on the default cluster', async () => {
    const res = await new OpenAI({
      baseURL: plain.baseURL,
      apiKey: alice.key,
      maxRetries: 0,
      defaultHeaders: { 'x-lmgate-route': 'hipaa' },
    }).chat.completions.create({ model: 'mock-small', messages: [{ role: 'user', content: 'x' }] });
    expect(res.choices).toHaveLength(1);
    expect(plain.mockLarge!.received).toHaveLength(0);
    expect(plain.mock.received).toHaveLength(1);
  });
});
