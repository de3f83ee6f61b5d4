import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, type ErrorCode, errorCatalogMarkdown, GateError, internalError, refuse } from './errors.ts';

describe('the error catalog', () => {
  it('README lists every code a client may receive (regenerate: the table is errorCatalogMarkdown())', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const block = readme.split('<!-- error-catalog:start -->')[1]?.split('<!-- error-catalog:end -->')[0];
    expect(block?.trim()).toBe(errorCatalogMarkdown());
  });

  const rows: { name: string; code: ErrorCode; status: number; outcome: string; header?: string }[] = [
    { name: 'a malformed body is a 400 the gate decided', code: 'invalid_json', status: 400, outcome: 'rejected' },
    {
      name: 'a missing key is a 401 that names the auth scheme',
      code: 'missing_api_key',
      status: 401,
      outcome: 'rejected',
      header: 'www-authenticate',
    },
    {
      name: 'draining is a 503 the gate decided, with a retry hint',
      code: 'draining',
      status: 503,
      outcome: 'rejected',
      header: 'retry-after',
    },
    { name: 'a missed deadline is the gate failing to decide', code: 'gateway_timeout', status: 503, outcome: 'error' },
    { name: 'an internal error is the gate failing', code: 'internal_error', status: 500, outcome: 'error' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const e = refuse(r.code, 'message');
      expect([e.status, e.outcome]).toEqual([r.status, r.outcome]);
      if (r.header) expect(e.headers.map(([k]) => k)).toContain(r.header);
    });
  }

  it('a failed bearer token says so in www-authenticate (RFC 6750), so clients fetch a new one', () => {
    expect(refuse('invalid_token', 'expired').headers).toEqual([
      ['www-authenticate', 'Bearer realm="lm-gate", error="invalid_token"'],
    ]);
    expect(refuse('invalid_api_key', 'no').headers).toEqual([['www-authenticate', 'Bearer realm="lm-gate"']]);
  });

  it('every status is one an OpenAI client maps to its error class', () => {
    for (const spec of Object.values(ERROR_CATALOG))
      expect([400, 401, 403, 404, 413, 415, 429, 500, 503]).toContain(spec.status);
  });

  it('the body is OpenAI-shaped and carries the rule that decided', () => {
    const e = refuse('model_not_allowed', 'no', { ruleId: 'identity.apiKeys.a.models' });
    expect(JSON.parse(e.body().toString())).toEqual({
      error: {
        message: 'no',
        type: 'permission_error',
        code: 'model_not_allowed',
        param: null,
        rule_id: 'identity.apiKeys.a.models',
      },
    });
    expect(internalError()).toBeInstanceOf(GateError);
  });
});
