// The event helpers of dlp.response: the copy a rewrite works on, and where per-token texts are.
import { describe, expect, it } from 'vitest';
import { copyEvent, otherStrings, tokenDetailsIn, tokenDetailsInAnswer } from './event-texts.ts';

describe('copyEvent', () => {
  it('copies an event deeply: the copy changes alone, and serialises the same', () => {
    const text =
      '{"id":"c","choices":[{"index":0,"delta":{"content":"hi","tool_calls":[{"index":0}]},"logprobs":null}],"n":1.5,"ok":true}';
    const data = JSON.parse(text);
    const copy = copyEvent(data);
    expect(JSON.stringify(copy)).toBe(text);
    copy.choices[0].delta.content = 'changed';
    copy.choices[0].delta.tool_calls.push({});
    expect(JSON.stringify(data)).toBe(text);
  });

  it('keeps a __proto__ member a member (JSON.parse makes it one), never a prototype', () => {
    const data = JSON.parse('{"__proto__":{"polluted":true},"a":"x"}');
    const copy = copyEvent(data);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
    expect(JSON.stringify(copy)).toBe('{"__proto__":{"polluted":true},"a":"x"}');
  });

  it('copies nesting deeper than its own recursion goes', () => {
    const deep = `${'['.repeat(1000)}"x"${']'.repeat(1000)}`;
    expect(JSON.stringify(copyEvent(JSON.parse(deep)))).toBe(deep);
  });
});

describe('where an event carries per-token texts', () => {
  it.each([
    [
      'OpenAI logprobs with tokens',
      'openai',
      { choices: [{ logprobs: { content: [{ token: 'a', logprob: -1 }] } }] },
      'logprobs',
    ],
    ['OpenAI logprobs null', 'openai', { choices: [{ logprobs: null }] }, undefined],
    ['OpenAI logprobs without a string', 'openai', { choices: [{ logprobs: { content: [] } }] }, undefined],
    [
      "vLLM's prompt_logprobs",
      'openai',
      { prompt_logprobs: [null, { '1': { decoded_token: 'a' } }] },
      'prompt_logprobs',
    ],
    ["Ollama's logprobs", 'ollama', { logprobs: [{ token: 'a' }] }, 'logprobs'],
    ["TGI's top_tokens", 'tgi', { top_tokens: [{ text: 'a' }] }, 'top_tokens'],
    ["TGI's last event's details (no token texts)", 'tgi', { details: { finish_reason: 'length' } }, undefined],
  ] as const)('%s', (_, family, data, expected) => {
    expect(tokenDetailsIn(data as Record<string, unknown>, family)).toBe(expected);
  });

  it.each([
    ['TGI details.tokens', 'tgi', { generated_text: 'a', details: { tokens: [{ text: 'a' }] } }, 'details.tokens'],
    [
      "TGI's compat route (a list)",
      'tgi',
      [{ generated_text: 'a', details: { prefill: [{ text: 'a' }] } }],
      'details.prefill',
    ],
    [
      'a completions choice’s prompt_logprobs',
      'openai',
      { choices: [{ text: 'a', prompt_logprobs: [null, { '1': { decoded_token: 'a' } }] }] },
      'prompt_logprobs',
    ],
    ['an answer without any', 'openai', { choices: [{ message: { content: 'tokens' }, logprobs: null }] }, undefined],
    ['the name only as a text', 'openai', { choices: [{ message: { content: 'logprobs' }, logprobs: [] }] }, undefined],
    [
      'the name quoted inside a text',
      'openai',
      { choices: [{ message: { content: 'write "logprobs": {"a":1}' }, logprobs: {} }] },
      undefined,
    ],
  ] as const)('a whole answer: %s', (_, family, data, expected) => {
    expect(tokenDetailsInAnswer(Buffer.from(JSON.stringify(data)), family)).toBe(expected);
  });

  it('a whole answer spaced out by its server is read the same', () => {
    const body = '{ "choices" : [ { "logprobs" :\n { "content" : [ { "token" : "a" } ] } } ] }';
    expect(tokenDetailsInAnswer(Buffer.from(body), 'openai')).toBe('logprobs');
    expect(tokenDetailsInAnswer(Buffer.from('{"choices":[{"logprobs" : [ ]}]}'), 'openai')).toBeUndefined();
  });
});

describe('otherStrings', () => {
  it('leaves out the channels, ids, roles, the model and base64 media; keeps the rest with its path', () => {
    const data = {
      id: 'x',
      model: 'm',
      choices: [
        {
          index: 0,
          delta: {
            role: 'assistant',
            content: 'c',
            reasoning_content: 'r',
            tool_calls: [{ id: 't', function: { name: 'n', arguments: 'a' } }],
            images: ['data:image/png;base64,AAAA', 'data: text'],
          },
          finish_reason: null,
        },
      ],
      extra: { note: 'e' },
    };
    expect(otherStrings(data, 'openai').map((o) => [o.text, o.at.join('/')])).toEqual(
      expect.arrayContaining([
        ['n', 'choices/0/delta/tool_calls/0/function/name'],
        ['data: text', 'choices/0/delta/images/1'],
        ['e', 'extra/note'],
      ]),
    );
    expect(otherStrings(data, 'openai')).toHaveLength(3);
  });
});
