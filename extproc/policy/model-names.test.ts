// Model names are matched by the key Ollama resolves them by: every spelling of one model is one
// key, and a pattern matches all of them.
import { describe, expect, it } from 'vitest';
import { compileModelPatterns, modelKey } from './model-names.ts';

describe('modelKey', () => {
  const table: [string, string][] = [
    ['llama3', 'llama3:latest'],
    ['llama3:latest', 'llama3:latest'],
    ['LLAMA3', 'llama3:latest'],
    ['library/llama3', 'llama3:latest'],
    ['registry.ollama.ai/library/llama3:latest', 'llama3:latest'],
    ['https://registry.ollama.ai/library/llama3', 'llama3:latest'],
    ['llama3:8b+Q4_0', 'llama3:8b'],
    ['llama3:8b@sha256-0123abcd', 'llama3:8b'],
    ['jane/ft:v1', 'jane/ft:v1'],
    ['library\\llama3', 'llama3:latest'],
    ['registry.ollama.ai/jane/ft:v1', 'jane/ft:v1'],
    ['example.com/library/llama3', 'example.com/library/llama3:latest'],
    ['meta-llama/Llama-3.1-8B-Instruct', 'meta-llama/llama-3.1-8b-instruct:latest'],
    ['a/b/c/d', 'a/b/c/d'],
  ];
  for (const [name, key] of table) it(`${name} → ${key}`, () => expect(modelKey(name)).toBe(key));
});

describe('compileModelPatterns', () => {
  it('an exact pattern matches every spelling of its model, and nothing else', () => {
    const m = compileModelPatterns(['llama3:70b']);
    for (const v of ['llama3:70b', 'LLAMA3:70B', 'library/llama3:70b', 'registry.ollama.ai/library/llama3:70b+q8_0'])
      expect(m(v), v).toBe(true);
    for (const v of ['llama3', 'llama3:8b', 'jane/llama3:70b', 'llama3:70b-instruct']) expect(m(v), v).toBe(false);
  });

  it('a pattern written without the tag matches the model under its default tag only', () => {
    const m = compileModelPatterns(['llama3']);
    expect(m('llama3:latest')).toBe(true);
    expect(m('llama3:70b')).toBe(false);
  });

  it('a wildcard pattern matches the key or the name as written, in any case', () => {
    const m = compileModelPatterns(['acme-*', 'library/mistral*', '*-Instruct']);
    for (const v of [
      'ACME-regulatory-v1',
      'library/acme-x',
      'mistral:7b',
      'registry.ollama.ai/library/mistral',
      'x-instruct',
    ])
      expect(m(v), v).toBe(true);
    for (const v of ['globex-acme', 'jane/mistral']) expect(m(v), v).toBe(false);
  });

  it('* matches everything', () => expect(compileModelPatterns(['x', '*'])('anything')).toBe(true));

  it('answers in linear time whatever name the client sends', () => {
    const started = performance.now();
    expect(compileModelPatterns(['a*-*-*-*b'])(`a${'-'.repeat(200_000)}`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
