// Requests as `policy explain` and `policy test` take them, resolved to what the gate would see.
import { describe, expect, it } from 'vitest';
import { DescriptionError, parseRequest } from './describe.ts';

describe('parseRequest', () => {
  const table: [name: string, description: Record<string, unknown>, want: Record<string, unknown> | string][] = [
    [
      'by endpoint: the canonical path and method',
      { endpoint: 'openai.chat', model: 'm' },
      { endpoint: 'openai.chat', method: 'POST', path: '/v1/chat/completions', bodyFollows: true, stream: false },
    ],
    [
      'by path: classified as the gate classifies it',
      { path: '/v1//chat/completions?x=1', model: 'm' },
      { endpoint: 'openai.chat', method: 'POST', path: '/v1//chat/completions', bodyFollows: true },
    ],
    ['Ollama chat streams unless told not to', { endpoint: 'ollama.chat', model: 'm' }, { stream: true }],
    ['a GET has no body', { endpoint: 'openai.models' }, { method: 'GET', path: '/v1/models', bodyFollows: false }],
    ['a path outside the APIs', { method: 'POST', path: '/admin' }, { endpoint: 'unknown', bodyFollows: false }],
    [
      'a time',
      { endpoint: 'openai.models', time: '2026-03-04T10:00:00+01:00' },
      { nowMs: Date.parse('2026-03-04T09:00:00Z') },
    ],
    ['neither endpoint nor path', { model: 'm' }, 'request: give its endpoint (openai.chat, ...) or its path'],
    [
      'an endpoint the path is not',
      { endpoint: 'openai.chat', path: '/v1/embeddings', model: 'm' },
      'request: POST /v1/embeddings is openai.embeddings, not openai.chat',
    ],
    [
      'a call that needs a model',
      { endpoint: 'ollama.generate' },
      'request: ollama.generate calls name a model (the gate refuses one without, 400)',
    ],
    [
      'a model on a TGI call, whose body names none',
      { endpoint: 'tgi.generate', model: 'llama' },
      'request: tgi.generate calls name no model; the gate judges them as routing.tgiModel',
    ],
    [
      'body facts on a call without a body',
      { endpoint: 'ollama.tags', data_classes: ['PHI'] },
      'request: GET /api/tags has no body, so no model, stream, max_tokens, data_classes or route',
    ],
    [
      'an unknown field',
      { endpoint: 'openai.chat', model: 'm', temperature: 1 },
      'request: Unrecognized key: "temperature"',
    ],
  ];
  for (const [name, description, want] of table) {
    it(name, () => {
      if (typeof want === 'string') {
        let err: unknown;
        try {
          parseRequest(description);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DescriptionError);
        expect((err as Error).message).toBe(want);
      } else expect(parseRequest(description)).toMatchObject(want);
    });
  }
});
