// The response reader's event layer: every data event decoded once for stages that asked, with
// drop, replace and ending the stream with an error event the SDKs raise.
import { describe, expect, it } from 'vitest';
import { runStage } from '../../test/harness/run-stage.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage } from '../pipeline/stage.ts';
import { createResponseStream, type ResponseEvent } from './response-stream.ts';

const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const chunk = (content: string, index = 0) => ({
  id: 'c',
  object: 'chat.completion.chunk',
  model: 'm',
  choices: [{ index, delta: { content }, finish_reason: null }],
});
const error = { message: 'blocked', type: 'permission_error', code: 'content_blocked', param: null };

function reader(
  onEvent: (e: ResponseEvent, r: ReturnType<typeof createResponseStream>) => void,
  format: 'sse' | 'ndjson' = 'sse',
  kind: 'openai.chat' | 'ollama.chat' = 'openai.chat',
) {
  const r = createResponseStream({ format, kind, dropUsageEvent: false, onEvent: (e) => onEvent(e, r) });
  return r;
}

describe('response events', () => {
  it('read-only listeners (metering) see every event while each chunk passes through as the same Buffer', () => {
    const seen: string[] = [];
    const r = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent: false,
      readOnlyEvents: true,
      onEvent: (e) => seen.push(...e.texts.map((t) => t.text)),
    });
    const bytes = Buffer.from(`${sse(chunk('Hel')) + sse(chunk('lo'))}data: [DONE]\n\n`);
    for (const [a, b] of [
      [0, 17],
      [17, 60],
      [60, bytes.length],
    ] as const) {
      const part = bytes.subarray(a, b);
      expect(r.push(part, b === bytes.length)).toBe(part);
    }
    expect(seen).toEqual(['Hel', 'lo']);
  });

  it('hands every data event to the listener with its text per choice, once, across chunk splits', () => {
    const seen: string[] = [];
    const r = reader((e) => seen.push(...e.texts.map((t) => `${t.choice}:${t.text}`)));
    const body = `${sse(chunk('Hel')) + sse(chunk('lo', 1))}data: [DONE]\n\n`;
    const out = [r.push(Buffer.from(body.slice(0, 17)), false), r.push(Buffer.from(body.slice(17)), true)];
    expect(seen).toEqual(['0:Hel', '1:lo']);
    expect(Buffer.concat(out).toString()).toBe(body); // nothing changed: forwarded as is
  });

  it('after replace() or drop(), the event carries the texts the client gets, for the listeners after it', () => {
    const after: string[] = [];
    const r = reader((e) => {
      if (e.end) return;
      if (e.texts[0]?.text === 'secret') e.replace(chunk('[hidden]'));
      else if (e.texts[0]?.text === 'noise') e.drop();
      after.push(e.texts.map((t) => t.text).join('|'));
    });
    const body = `${sse(chunk('a')) + sse(chunk('secret')) + sse(chunk('noise'))}data: [DONE]\n\n`;
    r.push(Buffer.from(body), true);
    expect(after).toEqual(['a', '[hidden]', '']);
  });

  it('exposes tool-call argument fragments', () => {
    const args: string[] = [];
    const r = reader((e) => args.push(...e.toolArguments.map((a) => `${a.choice}/${a.call}:${a.text}`)));
    const tool = { choices: [{ index: 0, delta: { tool_calls: [{ index: 2, function: { arguments: '{"q":' } }] } }] };
    r.push(Buffer.from(sse(tool)), true);
    expect(args).toEqual(['0/2:{"q":']);
  });

  it('drop() withholds an event and replace() sends other JSON in its place', () => {
    const r = reader((e) => {
      if (e.texts[0]?.text === 'secret') e.drop();
      if (e.texts[0]?.text === 'jane@example.com') e.replace(chunk('[email]'));
    });
    const out = r.push(Buffer.from(sse(chunk('a')) + sse(chunk('secret')) + sse(chunk('jane@example.com'))), true);
    expect(out.toString()).toBe(sse(chunk('a')) + sse(chunk('[email]')));
  });

  it('endWithError sends what came before, then an OpenAI error event, then nothing more', () => {
    const r = reader((e, self) => {
      if (e.texts.some((t) => t.text.includes('SECRET'))) self.endWithError(error);
    });
    const first = r.push(Buffer.from(sse(chunk('fine ')) + sse(chunk('SECRET')) + sse(chunk('more'))), false);
    expect(first.toString()).toBe(sse(chunk('fine ')) + sse({ error }));
    expect(r.ended).toBe(true);
    expect(r.push(Buffer.from(sse(chunk('later'))), false).length).toBe(0);
    expect(r.push(Buffer.from('data: [DONE]\n\n'), true).length).toBe(0);
  });

  it('an Ollama stream ends with the error record its clients raise', () => {
    const r = reader(
      (e, self) => {
        if (e.texts[0]?.text === 'bad') self.endWithError(error);
      },
      'ndjson',
      'ollama.chat',
    );
    const line = (content: string) => `${JSON.stringify({ model: 'l', message: { content }, done: false })}\n`;
    const out = r.push(Buffer.from(line('ok') + line('bad') + line('after')), false);
    expect(out.toString()).toBe(`${line('ok')}{"error":"blocked"}\n`);
  });

  it('an event too large to decode ends the stream when a listener reads events, never passes unread', () => {
    const seen: string[] = [];
    const r = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent: false,
      maxEventBytes: 64,
      onEvent: (e) => seen.push(...e.texts.map((t) => t.text)),
      onUninspectable: () => r.endWithError(error),
    });
    const big = sse(chunk(`secret ${'x'.repeat(200)}`));
    const out = Buffer.concat([
      r.push(Buffer.from(sse(chunk('ok')) + big.slice(0, 100)), false),
      r.push(Buffer.from(big.slice(100)), true),
    ]);
    expect(out.toString()).toBe(sse(chunk('ok')) + sse({ error }));
    expect(seen).toEqual(['ok']);
  });

  it.each([
    ['not JSON', 'data: mail a@x.io\n\n'],
    ['a JSON array', `data: ${JSON.stringify([chunk('a@x.io')])}\n\n`],
    ['a JSON string', 'data: "a@x.io"\n\n'],
  ])('an event whose data is %s ends the stream when a listener may change events, never passes unread', (_, bad) => {
    const why: string[] = [];
    const r = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent: false,
      onEvent: () => {},
      onUninspectable: (w) => {
        why.push(w);
        r.endWithError(error);
      },
    });
    const out = r.push(Buffer.from(sse(chunk('ok')) + bad + sse(chunk('after'))), true);
    expect(out.toString()).toBe(sse(chunk('ok')) + sse({ error }));
    expect(why).toEqual(['unreadable']);
  });

  it('a read-only listener (metering) lets such an event through as it is', () => {
    const bad = Buffer.from('data: not json\n\n');
    const r = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent: false,
      readOnlyEvents: true,
      onEvent: () => {},
      onUninspectable: () => r.endWithError(error),
    });
    expect(r.push(bad, true)).toBe(bad);
  });

  it('hands a listener that may change events the lines that are not data, split or not; a read-only one never', () => {
    const body = `: ping\r\n\r\n\nid: 7\n${sse(chunk('a'))}event: x\n\n: bye\ndata: [DONE]\n\n`;
    const lines = (readOnlyEvents: boolean, at: number) => {
      const seen: string[][] = [];
      const r = createResponseStream({
        format: 'sse',
        kind: 'openai.chat',
        dropUsageEvent: false,
        readOnlyEvents,
        onEvent: (e) => seen.push([...e.otherLines, ...e.texts.map((t) => `text ${t.text}`)]),
      });
      const out = [r.push(Buffer.from(body.slice(0, at)), false), r.push(Buffer.from(body.slice(at)), true)];
      r.flushEvents();
      expect(Buffer.concat(out).toString()).toBe(body);
      return seen;
    };
    for (let at = 0; at <= body.length; at++) {
      expect(lines(false, at)).toEqual([[': ping'], ['id: 7', 'text a'], ['event: x'], [': bye']]);
      expect(lines(true, at)).toEqual([['text a']]);
    }
  });

  it('an event with a name given twice goes out as its parse (what the listener judged) when kept', () => {
    const seen: string[] = [];
    const r = reader((e) => seen.push(...e.texts.map((t) => t.text)));
    const dup = '{"choices":[{"index":0,"delta":{"content":"first","content":"last"}}],"x":"a\\"b"}';
    const clean = '{"choices":[{"index":0,"delta":{"content":"ok \\"q\\" \\\\"}}]}';
    const out = r.push(Buffer.from(`id: 1\ndata: ${dup}\n\ndata: ${clean}\n\n`), true).toString();
    expect(seen).toEqual(['last', 'ok "q" \\']);
    expect(out).toBe(`id: 1\ndata: ${JSON.stringify(JSON.parse(dup))}\n\ndata: ${clean}\n\n`);
    expect(out).not.toContain('first');
    // A read-only listener changes nothing: the bytes pass as they came.
    const ro = createResponseStream({
      format: 'sse',
      kind: 'openai.chat',
      dropUsageEvent: false,
      readOnlyEvents: true,
      onEvent: () => {},
    });
    const bytes = Buffer.from(`data: ${dup}\n\n`);
    expect(ro.push(bytes, true)).toBe(bytes);
  });

  it('[DONE] reaches a listener that may change events, which can send an event before it', () => {
    const seen: string[] = [];
    const r = reader((e) => {
      seen.push(e.end ? 'end' : e.texts.map((t) => t.text).join(''));
      if (e.end) e.insertBefore(chunk('tail'));
    });
    const out = r.push(Buffer.from(`${sse(chunk('a'))}data: [DONE]\n\n`), true).toString();
    expect(seen).toEqual(['a', 'end']);
    expect(out).toBe(`${sse(chunk('a'))}${sse(chunk('tail'))}data: [DONE]\n\n`);
  });

  it('a replaced event keeps its other lines in front of its new data line', () => {
    const r = reader((e) => e.replace({ n: 1 }));
    const out = r.push(Buffer.from(`id: 7\r\n: c\r\n${sse(chunk('a'))}`), true);
    expect(out.toString()).toBe('id: 7\n: c\ndata: {"n":1}\n\n');
  });

  it('without a listener, only events that can carry usage or the model are decoded', () => {
    const r = createResponseStream({ format: 'sse', kind: 'openai.chat', dropUsageEvent: false });
    const body = Buffer.from(sse(chunk('x')).repeat(10));
    expect(r.push(body, true)).toBe(body); // the very buffer: no copy, no mutation
  });
});

describe('ending a stream through the state machine (runStage)', () => {
  it('later chunks reach the client empty, and the record says 200 then the error', async () => {
    const guard = defineStage({
      name: 'test.guard',
      summary: 'ends the stream at "stop"',
      needs: ['parsed'],
      provides: [],
      always: true,
      create: () => ({
        onResponseHeaders: (ctx) => ctx.readResponseBody({ events: true }),
        onResponseEvent: (ctx, e) => {
          if (e.texts.some((t) => t.text === 'stop')) ctx.endResponseStream(refuse('content_blocked', 'stopped'));
        },
      }),
    });
    const run = await runStage({
      stages: ['llm.api_shape'],
      extraStages: [guard],
      request: { path: '/v1/chat/completions', body: { model: 'm', messages: [], stream: true } },
      response: {
        headers: { 'content-type': 'text/event-stream' },
        chunks: [sse(chunk('go')), sse(chunk('stop')), sse(chunk('after')), 'data: [DONE]\n\n'],
      },
    });
    expect(run.client?.body).toBe(
      sse(chunk('go')) +
        sse({ error: { message: 'stopped', type: 'permission_error', code: 'content_blocked', param: null } }),
    );
    expect(run.audit).toMatchObject({ status: 200, outcome: 'rejected', error: { code: 'content_blocked' } });
    expect(run.audit.failure).toMatch(/ended with an error event/);
  });
});
