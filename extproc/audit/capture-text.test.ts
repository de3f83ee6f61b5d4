// What a capture keeps of the texts: within maxChars per direction, cut at a character boundary
// (never inside a surrogate pair), with the characters seen counted; the prompt and response
// texts found at their JSON paths, escapes decoded.
import { describe, expect, it } from 'vitest';
import { CaptureBudget, jsonResponseParts, promptParts, StreamTexts } from './capture-text.ts';

describe('CaptureBudget', () => {
  const rows: { name: string; max: number; texts: string[]; kept: string[]; total: number; truncated: boolean }[] = [
    {
      name: 'texts within the budget are kept whole',
      max: 10,
      texts: ['abc', 'def'],
      kept: ['abc', 'def'],
      total: 6,
      truncated: false,
    },
    {
      name: 'exactly the budget is not truncated',
      max: 6,
      texts: ['abc', 'def'],
      kept: ['abc', 'def'],
      total: 6,
      truncated: false,
    },
    {
      name: 'the text that crosses the budget is cut',
      max: 5,
      texts: ['abc', 'def'],
      kept: ['abc', 'de'],
      total: 6,
      truncated: true,
    },
    {
      name: 'after a cut nothing is kept, even a text that would fit the rest (no gap in the capture)',
      max: 5,
      texts: ['abc', 'd😀', 'e'],
      kept: ['abc', 'd', ''],
      total: 7,
      truncated: true,
    },
    {
      name: 'a cut never splits a surrogate pair: the emoji is left out whole',
      max: 3,
      texts: ['ab😀c'],
      kept: ['ab'],
      total: 5,
      truncated: true,
    },
    { name: 'an emoji that fits whole is kept', max: 4, texts: ['ab😀c'], kept: ['ab😀'], total: 5, truncated: true },
    {
      name: 'multi-byte characters count as UTF-16 units',
      max: 3,
      texts: ['żółw'],
      kept: ['żół'],
      total: 4,
      truncated: true,
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const b = new CaptureBudget(r.max);
      expect(r.texts.map((t) => b.take(t))).toEqual(r.kept);
      expect(b.total).toBe(r.total);
      expect(b.truncated).toBe(r.truncated);
      for (const k of b.truncated ? r.kept : []) expect(Buffer.from(k).toString()).toBe(k);
    });
});

const body = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('promptParts', () => {
  it('chat: every message text with its role, text parts of content arrays, escapes decoded', () => {
    const b = body({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be "brief"\n' },
        {
          content: [
            { type: 'text', text: 'Look: ' },
            { type: 'image_url', image_url: { url: 'data:x' } },
            { type: 'text', text: 'żółw' },
          ],
          role: 'user',
        },
        { role: 'assistant', content: null, tool_calls: [{ id: 't', function: { name: 'f', arguments: '{}' } }] },
      ],
      user: 'not a prompt',
    });
    expect(promptParts(b, new CaptureBudget(1000))).toEqual([
      { role: 'system', text: 'Be "brief"\n' },
      { role: 'user', text: 'Look: ' },
      { role: 'user', text: 'żółw' },
    ]);
  });

  it('completions, embeddings and Ollama generate: the prompt fields by name', () => {
    expect(promptParts(body({ model: 'm', prompt: ['one', 'two'], suffix: 'end' }), new CaptureBudget(100))).toEqual([
      { role: 'prompt', text: 'one' },
      { role: 'prompt', text: 'two' },
      { role: 'suffix', text: 'end' },
    ]);
    expect(promptParts(body({ model: 'm', input: 'vectorise me' }), new CaptureBudget(100))).toEqual([
      { role: 'input', text: 'vectorise me' },
    ]);
    expect(
      promptParts(body({ model: 'm', system: 'sys', prompt: 'p', options: { stop: ['x'] } }), new CaptureBudget(100)),
    ).toEqual([
      { role: 'system', text: 'sys' },
      { role: 'prompt', text: 'p' },
    ]);
  });

  it('stops keeping at the budget and counts the rest', () => {
    const budget = new CaptureBudget(5);
    const parts = promptParts(
      body({
        messages: [
          { role: 'user', content: 'hello world' },
          { role: 'user', content: 'more' },
        ],
      }),
      budget,
    );
    expect(parts).toEqual([{ role: 'user', text: 'hello' }]);
    expect(budget.total).toBe(15);
    expect(budget.truncated).toBe(true);
  });
});

describe('jsonResponseParts', () => {
  it('OpenAI chat and completions: the content of each choice', () => {
    const chat = body({
      id: 'x',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'first' }, finish_reason: 'stop' },
        { index: 1, message: { role: 'assistant', content: 'second' } },
      ],
      usage: { prompt_tokens: 1 },
    });
    expect(jsonResponseParts(chat, new CaptureBudget(100))).toEqual([
      { choice: 0, text: 'first' },
      { choice: 1, text: 'second' },
    ]);
    expect(jsonResponseParts(body({ choices: [{ index: 0, text: 'done' }] }), new CaptureBudget(100))).toEqual([
      { choice: 0, text: 'done' },
    ]);
  });

  it('Ollama chat and generate', () => {
    expect(
      jsonResponseParts(
        body({ model: 'm', message: { role: 'assistant', content: 'hi' }, done: true }),
        new CaptureBudget(9),
      ),
    ).toEqual([{ choice: 0, text: 'hi' }]);
    expect(jsonResponseParts(body({ model: 'm', response: 'yo', done: true }), new CaptureBudget(9))).toEqual([
      { choice: 0, text: 'yo' },
    ]);
  });

  it('a truncated body throws (the stage then keeps no response)', () => {
    expect(() =>
      jsonResponseParts(Buffer.from('{"choices":[{"message":{"content":"abc'), new CaptureBudget(9)),
    ).toThrow();
  });
});

describe('StreamTexts', () => {
  it('joins deltas per choice, in choice order, within one budget for all choices', () => {
    const budget = new CaptureBudget(8);
    const s = new StreamTexts(budget);
    s.add(1, 'B1');
    s.add(0, 'a1');
    s.add(0, 'a2');
    s.add(1, 'B2-long');
    s.add(0, 'a3');
    expect(s.parts()).toEqual([
      { choice: 0, text: 'a1a2' },
      { choice: 1, text: 'B1B2' },
    ]);
    expect(budget.total).toBe(15);
    expect(budget.truncated).toBe(true);
  });
});
