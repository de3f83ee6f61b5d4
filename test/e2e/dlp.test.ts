// DLP through real Envoy with the official openai client (issue #13's acceptance): values
// pseudonymised in the prompt never reach the model server and come back restored for the caller,
// streamed or not; secrets split over stream chunks are never released; a block mid-stream is an
// error the SDK raises; a PHI prompt goes only to the PHI-labelled cluster; a gzip body is
// inspected, never forwarded raw; a secret hidden with zero-width characters is still found.
import { gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PseudonymMap } from '../../extproc/dlp/actions.ts';
import { compileDlp } from '../../extproc/dlp/compile.ts';
import { makeKey } from '../harness/gate.ts';
import { type Stack, startStack } from '../harness/stack.ts';
import type { MockModel } from '../mock/model-server.ts';

const alice = makeKey('alice', { tenant: 'acme' });
const POLICY = {
  name: 'default',
  detectors: { EMAIL: 'pseudonymise' as const },
  patterns: [{ name: 'MRN', regex: 'MRN-[0-9]{6}', dataClass: 'PHI' as const, action: 'warn' as const }],
};
let stack: Stack;
let small: MockModel;
let large: MockModel;

beforeAll(async () => {
  stack = await startStack({
    keys: [alice],
    largeMock: true,
    gateExtra: {
      dlp: { inspect: 'both', compressedRequests: 'inspect', policies: [POLICY] },
      routing: {
        default: 'small',
        routes: [
          { name: 'small', models: ['mock-small'], dataClasses: ['pii', 'pci', 'secret'] },
          { name: 'hipaa', models: ['mock-small'], dataClasses: ['pii', 'phi'] },
        ],
      },
    },
  });
  small = stack.mock;
  large = stack.mockLarge!;
});
afterAll(async () => {
  await stack?.stop();
});

const client = () => new OpenAI({ baseURL: stack.baseURL, apiKey: alice.key, maxRetries: 0 });
const pieces = (p: string[]) => ({ 'x-mock-pieces': encodeURIComponent(JSON.stringify(p)) });
const ask = (content: string) => ({ model: 'mock-small', messages: [{ role: 'user' as const, content }] });

async function streamText(content: string, headers: Record<string, string>): Promise<string> {
  const s = await client().chat.completions.create({ ...ask(content), stream: true }, { headers });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  return text;
}

/** What the model server last received (both are reset before each test that asks). */
function lastReceived(): { body: string; headers: Record<string, unknown> } {
  const r = [...small.received, ...large.received].at(-1);
  if (!r) throw new Error('nothing reached a model server');
  return { body: Buffer.from(r.body).toString(), headers: r.headers };
}

function reset(): void {
  small.reset();
  large.reset();
}

describe('DLP through real Envoy', () => {
  it('pseudonymises a prompt: the mock sees a placeholder, the caller gets the value back (JSON)', async () => {
    reset();
    const res = await client().chat.completions.create(ask('Email jane.doe@example.com the plan'), {
      headers: { 'x-mock-content': encodeURIComponent('Sent to [EMAIL_1].') },
    });
    const got = lastReceived();
    expect(got.body).toContain('[EMAIL_1]');
    expect(got.body).not.toContain('jane.doe');
    expect(res.choices[0]?.message.content).toBe('Sent to jane.doe@example.com.');
  });

  it('restores a placeholder split over stream chunks, and never one the user typed', async () => {
    reset();
    const text = await streamText(
      'I am jane.doe@example.com; keep [EMAIL_1] as written',
      pieces(['Hi [EMA', 'IL_2], re [EMAIL_1', '].']),
    );
    expect(lastReceived().body).not.toContain('jane.doe');
    expect(text).toBe('Hi jane.doe@example.com, re [EMAIL_1].');
  });

  it('ends a stream with an error the SDK raises when the model writes a secret, releasing none of it', async () => {
    const s = await client().chat.completions.create(
      { ...ask('hi'), stream: true },
      { headers: pieces(['Your key is AKIAQ3EG', 'RZ7XKBN2LM4P', ' enjoy']) },
    );
    let text = '';
    const err = await (async () => {
      try {
        for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('content_blocked');
    // Only text before the key is released (the engine may hold more of it, never less).
    expect('Your key is '.startsWith(text)).toBe(true);
  });

  it('holds back and pseudonymises reasoning streamed beside the content (vLLM reasoning_content)', async () => {
    const s = await client().chat.completions.create(
      { ...ask('hi'), stream: true },
      {
        headers: {
          'x-mock-reasoning': encodeURIComponent(JSON.stringify(['They wrote from bob.s', 'mith@example.org, so'])),
          'x-mock-content': 'ok',
        },
      },
    );
    let reasoning = '';
    for await (const c of s) {
      const delta = c.choices[0]?.delta as { reasoning_content?: string } | undefined;
      expect(delta?.reasoning_content ?? '').not.toMatch(/bob|smith|example\.org/);
      reasoning += delta?.reasoning_content ?? '';
    }
    expect(reasoning).toBe('They wrote from [EMAIL_1], so');
  });

  it('refuses a stream that asks for logprobs (403 the SDK raises): their tokens would carry what DLP holds back', async () => {
    const err = await client()
      .chat.completions.create({ ...ask('hi'), stream: true, logprobs: true })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('content_blocked');
  });

  it('refuses a completions prompt given as token ids (403 the SDK raises): no scan reads them, the model does', async () => {
    reset();
    const err = await client()
      .completions.create({ model: 'mock-small', prompt: [9906, 1917] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('content_blocked');
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('prompt');
    expect(small.received).toHaveLength(0);
    expect(large.received).toHaveLength(0);
  });

  it('routes a PHI prompt only to the PHI-labelled cluster', async () => {
    reset();
    await client().chat.completions.create(ask('Summarise patient MRN-123456'));
    expect(small.received).toHaveLength(0);
    expect(large.received).toHaveLength(1);
    const plain = await client().chat.completions.create(ask('Summarise the weather')).withResponse();
    expect(plain.data.choices).toHaveLength(1);
    expect(small.received).toHaveLength(1);
  });

  it('inspects a gzip body: the SSN is redacted and the mock never gets the compressed bytes', async () => {
    reset();
    const body = gzipSync(JSON.stringify(ask('my ssn is 212-67-4391')));
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body,
    });
    expect(res.status).toBe(200);
    const got = lastReceived();
    expect(got.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(got.body).messages[0].content).toBe('my ssn is [REDACTED:US_SSN]');
  });

  it('scans a JSON answer over 64 KiB on a parse worker and still answers the client whole', async () => {
    reset();
    // 24,000 words of the mock's default reply: about 170 KB of JSON, over INLINE_SCAN_MAX_BYTES.
    const res = await client().chat.completions.create(ask('Write a long text to jane.doe@example.com'), {
      headers: { 'x-mock-chunks': '24000' },
    });
    const content = res.choices[0]?.message.content ?? '';
    expect(content.length).toBeGreaterThan(64 * 1024);
    expect(content.startsWith('Hello from the mock model server! Hello from')).toBe(true);
    expect(content.split(' server! ')).toHaveLength(4001);
    expect(lastReceived().body).toContain('[EMAIL_1]');
  });

  it('finds an access key hidden with zero-width characters (403, nothing forwarded)', async () => {
    reset();
    const err = await client()
      .chat.completions.create(ask('use AKIA\u200bQ3EGRZ7XKBN2\u200dLM4P please'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('content_blocked');
    expect(small.received).toHaveLength(0);
  });
});

describe('the split fuzz through real Envoy (a representative subset; every split runs in response-split.test.ts)', () => {
  const texts = [
    'Card 4111 1111 1111 1111, SSN 212-67-4391, done',
    'Reach bob.smith@corp.example.com 😀 or 世界 212-67-4391',
  ];
  const scanner = compileDlp(POLICY);
  for (const text of texts) {
    it(`joins to the redacted text for split points across ${JSON.stringify(text.slice(0, 16))}`, async () => {
      // The expected text: the whole text's findings replaced, pseudonyms numbered in order.
      const map = new PseudonymMap();
      let expected = '';
      let at = 0;
      for (const f of scanner.scan(text)) {
        const v = text.slice(f.start, f.end);
        const r =
          f.action === 'redact'
            ? `[REDACTED:${f.type}]`
            : f.action === 'pseudonymise'
              ? map.placeholderFor(f.type, v)
              : v;
        expected += text.slice(at, f.start) + r;
        at = f.end;
      }
      expected += text.slice(at);
      const cps = Array.from(text);
      for (let cut = 1; cut < cps.length; cut += 5) {
        const got = await streamText('go', pieces([cps.slice(0, cut).join(''), cps.slice(cut).join('')]));
        expect(got, `cut at ${cut}`).toBe(expected);
      }
    });
  }
});
