import { describe, expect, it } from 'vitest';
import { compilePatterns } from './patterns.ts';

describe('compilePatterns', () => {
  const table: [string[], string, boolean][] = [
    [['*'], 'anything', true],
    [['mock-small'], 'mock-small', true],
    [['mock-small'], 'mock-small-2', false],
    [['mock-*'], 'mock-large', true],
    [['mock-*'], 'xmock-large', false],
    [['llama-3.1-*-instruct'], 'llama-3.1-8b-instruct', true],
    [['llama-3.1-*-instruct'], 'llama-3.1-8b-base', false],
    [['a.b'], 'aXb', false], // dots are literal
    [['gpt-(4)'], 'gpt-(4)', true], // regex syntax is literal
    [['a', 'b*'], 'bee', true],
    [['a', 'b*'], 'c', false],
  ];
  for (const [patterns, value, want] of table) {
    it(`${JSON.stringify(patterns)} ${want ? 'matches' : 'does not match'} ${value}`, () => {
      expect(compilePatterns(patterns)(value)).toBe(want);
    });
  }
});
