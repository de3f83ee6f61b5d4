// The isolation bench's attacker bodies are what they claim: valid JSON chat requests, within
// the limit and close to it, at the depth they say. No timing is asserted.
import { describe, expect, it } from 'vitest';
import { attackerBody, BODY_IDS, jsonDepth } from './isolation-bodies.ts';

const LIMIT = 4 * 1024 * 1024;

describe('isolation attacker bodies', () => {
  for (const id of BODY_IDS) {
    it(`body ${id} is a valid chat request within 256 bytes of the limit`, () => {
      const body = attackerBody(id, LIMIT, 64);
      expect(body.length).toBeLessThanOrEqual(LIMIT);
      expect(body.length).toBeGreaterThan(LIMIT - 256);
      const json = JSON.parse(body.toString('utf8')) as { model: string; messages: { content: unknown }[] };
      expect(json.model).toBe('mock-small');
      expect(json.messages).toHaveLength(1);
    });
  }

  it('nests a as deep as fits and b exactly to the depth limit', () => {
    expect(jsonDepth(attackerBody('a', LIMIT, 64))).toBeGreaterThan(2_000_000);
    expect(jsonDepth(attackerBody('b', LIMIT, 64))).toBe(64);
    expect(jsonDepth(attackerBody('b', 10_000, 32))).toBe(32);
    for (const id of ['c', 'd', 'e', 'f', 'x'] as const) expect(jsonDepth(attackerBody(id, LIMIT, 64))).toBeLessThan(8);
  });

  it('counts depth outside strings only', () => {
    expect(jsonDepth(Buffer.from('{"a":"[[[\\"[[","b":[[1]]}'))).toBe(3);
  });
});
