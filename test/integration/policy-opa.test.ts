// policy.opa against a real Open Policy Agent (built from its pinned Go module by the harness,
// test/harness/opa.ts), through the gate's real pipeline and state machine (runStage): what each
// answer of its data API means, what the policy sees as `input`, and that every failure (an
// undefined decision, an unreachable server, a timeout) fails closed with 503.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Opa, startOpa } from '../harness/opa.ts';
import { freePort } from '../harness/ports.ts';
import { jwtPrincipal, runStage } from '../harness/run-stage.ts';
import { tempDir } from '../harness/temp-dirs.ts';

const REGO = `package lmgate

default allow := false

# Boolean decisions: acme chats with any model but forbidden-*; anyone lists the models.
allow if {
  input.principal.tenant == "acme"
  input.request.endpoint == "openai.chat"
  not startswith(input.request.model, "forbidden-")
}

allow if input.request.endpoint == "openai.models"

# Object decisions name their rule and say why.
decision := {"allow": false, "rule_id": "opa.no-large-generations", "reason": "max_tokens over 1000"} if {
  input.request.max_tokens > 1000
} else := {"allow": true, "rule_id": "opa.ok"}

# True only when the input document is exactly as documented.
input_ok if {
  input.principal == {
    "id": "user-42", "tenant": "acme", "team": "claims", "user": "jane@acme.example",
    "roles": ["analyst"], "attributes": {"department": "claims"}, "method": "jwt",
    "issuer": "https://idp.acme.example",
  }
  input.request == {
    "endpoint": "openai.chat", "model": "m", "stream": true, "max_tokens": 64,
    "path": "/v1/chat/completions", "method": "POST",
  }
  input.data_classes == ["PII"]
  input.route == {"name": "eu-1", "labels": {"residency": "eu"}}
  time.parse_rfc3339_ns(input.time) == time.parse_rfc3339_ns("2026-03-04T21:30:00Z")
}
`;

let opa: Opa;
/** Accepts connections and never answers: an OPA that hangs. */
let silent: Server;
let silentPort: number;
const sockets = new Set<Socket>();

beforeAll(async () => {
  opa = await startOpa({ 'lmgate.rego': REGO }, await tempDir('lm-gate-opa-'));
  silent = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as { port: number }).port;
}, 600_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  silent?.close();
  await opa?.stop();
});

const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  path: '/v1/chat/completions',
  body: { model, messages: [{ role: 'user', content: 'hi' }], ...extra },
});

function run(opaConfig: Record<string, unknown>, opts: Partial<Parameters<typeof runStage>[0]> = {}) {
  return runStage({
    stages: ['llm.api_shape', 'policy.access', 'policy.rules'],
    given: { principal: jwtPrincipal() },
    request: chat('m'),
    ...opts,
    config: {
      policy: { ...(opts.config?.policy as object), opa: { url: opa.url, path: 'lmgate/allow', ...opaConfig } },
    },
  });
}

describe('policy.opa with a real OPA', () => {
  it('true admits, and the audit names opa:<path>', async () => {
    const r = await run({});
    expect(r.refused).toBeUndefined();
    expect(r.audit.decisions).toContainEqual(
      expect.objectContaining({ stage: 'policy.rules', rule_id: 'opa:lmgate/allow', effect: 'allow' }),
    );
  });

  it('false denies with 403 naming opa:<path>', async () => {
    const r = await run({}, { request: chat('forbidden-model') });
    expect(r.refused).toMatchObject({ status: 403, code: 'policy_denied', ruleId: 'opa:lmgate/allow' });
  });

  it('another tenant is denied by the same rule', async () => {
    const r = await run({}, { given: { principal: jwtPrincipal({ tenant: 'globex' }) } });
    expect(r.refused).toMatchObject({ status: 403, ruleId: 'opa:lmgate/allow' });
  });

  it('an object decision names its own rule and reason', async () => {
    const denied = await run({ path: 'lmgate/decision' }, { request: chat('m', { max_tokens: 5000 }) });
    expect(denied.refused).toMatchObject({ status: 403, code: 'policy_denied', ruleId: 'opa.no-large-generations' });
    expect(denied.audit.decisions).toContainEqual(
      expect.objectContaining({ rule_id: 'opa.no-large-generations', effect: 'deny', reason: 'max_tokens over 1000' }),
    );
    const allowed = await run({ path: 'lmgate/decision' }, { request: chat('m', { max_tokens: 10 }) });
    expect(allowed.refused).toBeUndefined();
    expect(allowed.audit.decisions).toContainEqual(expect.objectContaining({ rule_id: 'opa.ok', effect: 'allow' }));
  });

  it('the input is the documented document: principal, request, data classes, route, time', async () => {
    const r = await run(
      { path: 'lmgate/input_ok' },
      {
        given: {
          principal: jwtPrincipal(),
          dataClasses: ['PII'],
          route: { name: 'eu-1', labels: { residency: 'eu' } },
        },
        request: chat('m', { stream: true, max_tokens: 64 }),
        clock: { now: () => Date.parse('2026-03-04T21:30:00Z') },
      },
    );
    expect(r.refused).toBeUndefined();
  });

  it('a call without a body is asked at request headers', async () => {
    const r = await run(
      {},
      { given: { principal: jwtPrincipal({ tenant: 'globex' }) }, request: { path: '/v1/models' } },
    );
    expect(r.refused).toBeUndefined();
    expect(r.audit.decisions).toContainEqual(expect.objectContaining({ rule_id: 'opa:lmgate/allow', effect: 'allow' }));
  });

  it('an undefined decision (no rule at the path) fails closed: 503', async () => {
    const r = await run({ path: 'lmgate/no_such_rule' });
    expect(r.refused).toMatchObject({ status: 503, code: 'policy_unavailable', ruleId: 'opa:lmgate/no_such_rule' });
    expect(r.audit.outcome).toBe('error');
    expect(r.audit.decisions).toContainEqual(
      expect.objectContaining({ effect: 'deny', reason: expect.stringContaining('undefined or malformed result') }),
    );
  });

  it('an unreachable OPA fails closed: 503', async () => {
    const r = await run({ url: `http://127.0.0.1:${await freePort()}` });
    expect(r.refused).toMatchObject({ status: 503, code: 'policy_unavailable' });
  });

  it('an OPA that does not answer within timeoutMs fails closed: 503, before the message deadline', async () => {
    const started = performance.now();
    const r = await run({ url: `http://127.0.0.1:${silentPort}`, timeoutMs: 40 });
    expect(r.refused).toMatchObject({ status: 503, code: 'policy_unavailable', ruleId: 'opa:lmgate/allow' });
    expect(r.audit.decisions).toContainEqual(
      expect.objectContaining({ reason: expect.stringContaining('no answer within 40 ms') }),
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('a request the local rules deny is refused without asking OPA', async () => {
    // OPA here would fail (nothing listens): the local 403, not a 503, shows it was never asked.
    const r = await run(
      { url: `http://127.0.0.1:${await freePort()}` },
      {
        config: {
          policy: {
            rules: [
              { id: 'no-m', action: 'DENY', to: { models: ['m'] } },
              { id: 'all', action: 'ALLOW' },
            ],
          },
        },
      },
    );
    expect(r.refused).toMatchObject({ status: 403, ruleId: 'policy.rules.no-m' });
  });

  it('with local rules admitting, OPA has the last word', async () => {
    const r = await run(
      {},
      {
        config: { policy: { rules: [{ id: 'all', action: 'ALLOW' }] } },
        request: chat('forbidden-model'),
      },
    );
    expect(r.refused).toMatchObject({ status: 403, ruleId: 'opa:lmgate/allow' });
    expect(r.audit.decisions).toContainEqual(expect.objectContaining({ rule_id: 'policy.rules.all', effect: 'allow' }));
  });
});
