// What an OPA data API answer means. Anything but a boolean or an object with a boolean allow is
// no decision, which the client sees as 503 (test/integration/policy-opa.test.ts runs a real OPA).
import { describe, expect, it } from 'vitest';
import { verdictOf } from './opa.ts';

describe('verdictOf', () => {
  const table: [name: string, doc: unknown, want: string | undefined][] = [
    ['true', { result: true }, 'allow opa:p'],
    ['false', { result: false }, 'deny opa:p'],
    ['an object', { result: { allow: false, rule_id: 'r.1', reason: 'why' } }, 'deny r.1 why'],
    ['an object without a rule id', { result: { allow: true } }, 'allow opa:p'],
    ['a rule id unfit for a metric label is left out', { result: { allow: false, rule_id: 'a b\n' } }, 'deny opa:p'],
    ['an undefined decision: no result', {}, undefined],
    ['null', { result: null }, undefined],
    ['a string', { result: 'true' }, undefined],
    ['an object without allow', { result: { rule_id: 'x' } }, undefined],
    ['allow that is not a boolean', { result: { allow: 'yes' } }, undefined],
    ['a set of results', { result: [true] }, undefined],
  ];
  for (const [name, doc, want] of table)
    it(name, () => {
      const v = verdictOf(doc, 'opa:p');
      const got = v && [v.effect, v.ruleId, ...(v.reason.startsWith('OPA') ? [] : [v.reason])].join(' ');
      expect(got).toBe(want);
    });
});
