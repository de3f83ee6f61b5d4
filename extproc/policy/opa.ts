// An external decision from Open Policy Agent, through its REST data API:
// POST <url>/v1/data/<path> with {"input": …} answers {"result": …}, where the result is true,
// false or {allow, rule_id?, reason?}. It fails closed: a timeout, an unreachable server, an
// error status, an undefined result (no rule at that path, or no default) or anything else
// malformed is a denial with 503 policy_unavailable, naming opa:<path>.
import type { PolicyConfig } from './config.ts';
import { opaInput, type PolicyInput } from './input.ts';
import { allow, deny, type Verdict } from './verdict.ts';

type OpaConfig = NonNullable<PolicyConfig['opa']>;

/** A decision document is a few hundred bytes; a larger answer is not one, and is not read. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface OpaClient {
  readonly ruleId: string;
  /** Resolves with a verdict, never rejects: every failure is a denial. */
  decide(input: PolicyInput, signal: AbortSignal | undefined): Promise<Verdict>;
}

export function createOpaClient(opa: OpaConfig): OpaClient {
  const endpoint = `${opa.url.replace(/\/+$/, '')}/v1/data/${opa.path}`;
  const ruleId = `opa:${opa.path}`;
  const unavailable = (why: string): Verdict =>
    deny(
      'policy.rules',
      ruleId,
      `OPA decision unavailable (${why}): fail closed`,
      'policy_unavailable',
      'The policy service could not decide; retry the request.',
    );
  return {
    ruleId,
    async decide(input, signal) {
      const timeout = AbortSignal.timeout(opa.timeoutMs);
      let res: Response;
      try {
        res = await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ input: opaInput(input) }),
          signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        });
      } catch (err) {
        return unavailable(timeout.aborted ? `no answer within ${opa.timeoutMs} ms` : errorName(err));
      }
      let text: string;
      try {
        text = await readBounded(res);
      } catch (err) {
        return unavailable(timeout.aborted ? `no answer within ${opa.timeoutMs} ms` : errorName(err));
      }
      if (res.status !== 200) return unavailable(`status ${res.status}`);
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        return unavailable('not JSON');
      }
      return verdictOf(doc, ruleId) ?? unavailable('undefined or malformed result');
    },
  };
}

/** The verdict a data API answer means, or undefined when it means none. */
export function verdictOf(doc: unknown, ruleId: string): Verdict | undefined {
  if (doc === null || typeof doc !== 'object' || !('result' in doc)) return undefined;
  const result = (doc as { result: unknown }).result;
  let allowed: boolean;
  let id = ruleId;
  let reason: string | undefined;
  if (typeof result === 'boolean') allowed = result;
  else if (
    result !== null &&
    typeof result === 'object' &&
    typeof (result as { allow?: unknown }).allow === 'boolean'
  ) {
    const r = result as { allow: boolean; rule_id?: unknown; reason?: unknown };
    allowed = r.allow;
    // Ids and reasons land in the audit and metrics: short, printable, or left out.
    if (typeof r.rule_id === 'string' && /^[A-Za-z0-9._:/@+-]{1,128}$/.test(r.rule_id)) id = r.rule_id;
    if (typeof r.reason === 'string' && r.reason.length <= 256) reason = r.reason;
  } else return undefined;
  return allowed
    ? allow('policy.rules', id, reason ?? 'OPA allowed')
    : deny('policy.rules', id, reason ?? 'OPA denied', 'policy_denied', 'The policy denied this request.');
}

async function readBounded(res: Response): Promise<string> {
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      await res.body.cancel().catch(() => {});
      throw new Error(`answer over ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function errorName(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string } };
  if (e.name === 'AbortError') return 'request cut short';
  return e.cause?.code ?? e.message ?? 'request failed';
}
