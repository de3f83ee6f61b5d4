// Policy rules end to end: the official openai client → real Envoy → LM Gate (its own process)
// → the mock model server. Endpoint-, model- and tenant-level denials reach the client as 403s
// naming the rule that decided, nothing reaches the model server, and the audit record and the
// decisions counter say the same.
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';

const acme = makeKey('acme-app', { tenant: 'acme' });
const intern = makeKey('intern-notebook', { tenant: 'acme' });
const globex = makeKey('globex-app', { tenant: 'globex' });

const POLICY = {
  defaultMaxTokens: 2048,
  rules: [
    {
      id: 'no-embeddings-for-globex',
      action: 'DENY',
      from: { tenants: ['globex'] },
      to: { endpoints: ['openai.embeddings'] },
    },
    { id: 'no-large-for-interns', action: 'DENY', from: { principals: ['intern-*'] }, to: { models: ['mock-large'] } },
    { id: 'acme-uses-everything', action: 'ALLOW', from: { tenants: ['acme'] } },
    { id: 'globex-uses-its-models', action: 'ALLOW', from: { tenants: ['globex'] } },
  ],
  tenantModels: { acme: ['mock-acme-*'] },
};

let stack: Stack;
/** Each request carries its own x-request-id (Envoy keeps a client's on internal requests), so
 * its audit record can be found. */
let requestId = '';
const client = (key: string) => {
  requestId = randomUUID();
  return new OpenAI({
    baseURL: stack.baseURL,
    apiKey: key,
    maxRetries: 0,
    defaultHeaders: { 'x-request-id': requestId },
  });
};
const chat = (key: string, model: string) =>
  client(key).chat.completions.create({ model, messages: [{ role: 'user', content: 'policy please' }] });

beforeAll(async () => {
  stack = await startStack({ keys: [acme, intern, globex], gateExtra: { policy: POLICY } });
});
afterAll(async () => {
  await stack?.stop();
});

/** The refusal the client got, as the SDK raises it, and the gate's audit record of it. */
async function refusal(call: Promise<unknown>) {
  const before = stack.mock.received.length;
  const err = await call.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  const e = err as InstanceType<typeof OpenAI.APIError>;
  // Nothing of a refused request reaches the model server.
  expect(stack.mock.received.length).toBe(before);
  const record = await stack.gate.auditFor(requestId);
  return { status: e.status, error: e.error as Record<string, unknown>, record };
}

describe('policy rules through real Envoy with the openai client', () => {
  it('an endpoint-level DENY: 403 with the rule id, decided before the body', async () => {
    const { status, error, record } = await refusal(
      client(globex.key).embeddings.create({ model: 'mock-embed', input: 'x' }),
    );
    expect(status).toBe(403);
    expect(error).toMatchObject({
      code: 'policy_denied',
      type: 'permission_error',
      rule_id: 'policy.rules.no-embeddings-for-globex',
    });
    expect(record).toMatchObject({
      outcome: 'rejected',
      status: 403,
      principal: { id: 'globex-app', tenant: 'globex', method: 'api_key', issuer: 'config' },
      error: { code: 'policy_denied', rule_id: 'policy.rules.no-embeddings-for-globex' },
      // Refused at request headers: the body's model was never read.
      gen_ai: { request: { model: null } },
    });
    expect(record.decisions).toContainEqual(
      expect.objectContaining({
        stage: 'policy.rules',
        rule_id: 'policy.rules.no-embeddings-for-globex',
        effect: 'deny',
      }),
    );
  });

  it('a model-level DENY beats the ALLOW that covers the tenant', async () => {
    const { status, error, record } = await refusal(chat(intern.key, 'mock-large'));
    expect(status).toBe(403);
    expect(error).toMatchObject({ code: 'policy_denied', rule_id: 'policy.rules.no-large-for-interns' });
    expect(record).toMatchObject({
      gen_ai: { request: { model: 'mock-large' } },
      error: { rule_id: 'policy.rules.no-large-for-interns' },
    });
  });

  it("tenant isolation: another tenant's model is 403 naming its owner", async () => {
    const { status, error, record } = await refusal(chat(globex.key, 'mock-acme-finetune'));
    expect(status).toBe(403);
    expect(error).toMatchObject({ code: 'policy_denied', rule_id: 'policy.tenantIsolation.acme' });
    expect(record.principal).toMatchObject({ tenant: 'globex' });
  });

  it('tenant isolation holds for every spelling of the model an Ollama server would resolve to it', async () => {
    for (const spelling of ['MOCK-ACME-finetune', 'library/mock-acme-finetune:latest']) {
      const { status, error } = await refusal(chat(globex.key, spelling));
      expect(status, spelling).toBe(403);
      expect(error).toMatchObject({ code: 'policy_denied', rule_id: 'policy.tenantIsolation.acme' });
    }
  });

  it('a chat that sets no max_tokens reaches the model server with policy.defaultMaxTokens in it', async () => {
    await chat(acme.key, 'mock-small');
    const sent = JSON.parse(Buffer.from(stack.mock.received.at(-1)!.body).toString());
    expect(sent).toMatchObject({ max_tokens: 2048, model: 'mock-small' });
    const record = await stack.gate.auditFor(requestId);
    expect(record.decisions).toContainEqual(
      expect.objectContaining({ rule_id: 'policy.defaultMaxTokens', effect: 'modify' }),
    );
  });

  it('an admitted request is served, and its audit names the rule that admitted it', async () => {
    const res = await chat(acme.key, 'mock-acme-finetune');
    expect(res.choices[0]?.message.content).toBeTruthy();
    const record = await stack.gate.auditFor(requestId);
    expect(record).toMatchObject({ outcome: 'completed', principal: { method: 'api_key', issuer: 'config' } });
    expect(record.decisions).toContainEqual(
      expect.objectContaining({ stage: 'policy.rules', rule_id: 'policy.rules.acme-uses-everything', effect: 'allow' }),
    );
  });

  it('the decisions counter has one series per rule and effect', async () => {
    const metrics = await stack.gate.metrics();
    const series: [rule: string, effect: string][] = [
      ['policy.rules.no-embeddings-for-globex', 'deny'],
      ['policy.rules.no-large-for-interns', 'deny'],
      ['policy.tenantIsolation.acme', 'deny'],
      ['policy.rules.acme-uses-everything', 'allow'],
    ];
    for (const [rule, effect] of series)
      expect(metrics).toMatch(
        new RegExp(
          `^lmgate_policy_decisions_total\\{rule="${rule.replaceAll('.', '\\.')}",effect="${effect}"\\} [1-9]`,
          'm',
        ),
      );
  });
});
