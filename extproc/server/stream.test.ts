// The state machine alone, over a fake call (no gRPC): protocol rows Envoy must never see
// violated. Every row ends with exactly one audit record.
import { describe, expect, it } from 'vitest';
import { openFakeStream, runStageConfig } from '../../test/harness/run-stage.ts';
import { refuse } from '../pipeline/errors.ts';
import { defineStage, type Stage } from '../pipeline/stage.ts';
import { STAGES } from '../pipeline/stages.ts';
import { BodySendMode, type ProcessingRequest } from './protocol.ts';

const headers = (pairs: Record<string, string>, endOfStream = false): ProcessingRequest => ({
  request: 'requestHeaders',
  requestHeaders: {
    headers: { headers: Object.entries(pairs).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })) },
    endOfStream,
  },
  protocolConfig: { requestBodyMode: BodySendMode.BUFFERED, responseBodyMode: BodySendMode.NONE },
});
const get = headers({ ':method': 'GET', ':path': '/v1/models', ':authority': 'a' }, true);
const body = (text: string): ProcessingRequest => ({
  request: 'requestBody',
  requestBody: { body: Buffer.from(text), endOfStream: true },
});
const responseHeaders = (status: number): ProcessingRequest => ({
  request: 'responseHeaders',
  responseHeaders: {
    headers: { headers: [{ key: ':status', rawValue: Buffer.from(String(status)) }] },
    endOfStream: true,
  },
});

function open() {
  const s = openFakeStream(runStageConfig({ stages: [] }));
  const errors: { code: number; details: string }[] = [];
  s.call.on('error', (e: { code: number; details: string }) => errors.push(e));
  return { ...s, errors };
}

/** A fake stream with no configured stages but one test stage with these hooks (`always`). */
function openWithStage(hooks: Stage) {
  const stage = defineStage({
    name: 'test.hooks',
    summary: 'hooks a test needs',
    needs: [],
    provides: [],
    always: true,
    create: () => hooks,
  });
  return openFakeStream(runStageConfig({ stages: [] }), [...STAGES, stage]);
}

interface Row {
  name: string;
  messages: ProcessingRequest[];
  /** The answers' kinds, in order. */
  answers: string[];
  /** The stream ends with a gRPC error (Envoy then fails the request closed). */
  protocolError?: RegExp;
  outcome: string;
}

const rows: Row[] = [
  {
    name: 'each message gets one answer of its own kind, and the request is audited once',
    messages: [get, responseHeaders(200)],
    answers: ['requestHeaders', 'responseHeaders'],
    outcome: 'completed',
  },
  {
    name: 'a request body before any request headers is a protocol error, not a crash',
    messages: [body('{}')],
    answers: [],
    protocolError: /request_body before request_headers/,
    outcome: 'error',
  },
  {
    name: 'request headers twice is a protocol error',
    messages: [get, get],
    answers: ['requestHeaders'],
    protocolError: /request_headers received twice/,
    outcome: 'error',
  },
  {
    name: 'a message that carries no phase is a protocol error',
    messages: [{} as ProcessingRequest],
    answers: [],
    protocolError: /carries no request/,
    outcome: 'error',
  },
  {
    name: 'in observability mode nothing is answered, and the request is still audited',
    messages: [
      { ...get, observabilityMode: true },
      { ...responseHeaders(200), observabilityMode: true },
    ],
    answers: [],
    outcome: 'completed',
  },
  {
    name: "Envoy's own reply before any request headers passes with its status, audited as a local reply",
    messages: [responseHeaders(400)],
    answers: ['responseHeaders'],
    outcome: 'local_reply',
  },
];

describe('the state machine over a fake call', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const s = open();
      for (const m of row.messages) s.send(m);
      await new Promise((r) => setImmediate(r));
      s.call.emit('end');
      await s.done;
      const kinds = s.call.written.map((a) =>
        Object.keys(a).find((k) => k !== 'dynamicMetadata' && k !== 'modeOverride'),
      );
      expect(kinds).toEqual(row.answers);
      if (row.protocolError) expect(s.errors.map((e) => e.details).join()).toMatch(row.protocolError);
      else expect(s.errors).toEqual([]);
      expect(s.record()?.outcome).toBe(row.outcome);
    });
  }

  it('a stream Envoy cancels before any message is still audited, as cancelled', async () => {
    const s = open();
    s.call.emit('cancelled');
    await s.done;
    expect(s.record()).toMatchObject({ outcome: 'cancelled', status: null });
  });
});

describe('a large message announced before it is whole (onArriving)', () => {
  const chat = headers({ ':method': 'POST', ':path': '/v1/chat/completions', ':authority': 'a' });

  it('asks Envoy to wait at once when no other message awaits its answer, and only once', () => {
    const s = open();
    s.send(chat);
    expect(s.call.written.map((w) => w.requestHeaders !== undefined)).toEqual([true]);
    s.stream.onArriving();
    s.stream.onArriving();
    const asks = s.call.written.filter((w) => w.overrideMessageTimeout !== undefined);
    expect(asks).toHaveLength(1);
    s.call.emit('cancelled');
  });

  it('does not ask while another message is still being decided (its timer is the one running)', () => {
    let release: () => void = () => undefined;
    // Holds the request headers until released.
    const s = openWithStage({ onRequestHeaders: () => new Promise<void>((r) => (release = r)) });
    s.send(chat);
    expect(s.call.written).toHaveLength(0);
    s.stream.onArriving();
    expect(s.call.written.filter((w) => w.overrideMessageTimeout !== undefined)).toHaveLength(0);
    release();
    s.call.emit('cancelled');
  });
});

describe('the end of a request follows its last answer onto the wire', () => {
  // Node's HTTP/2 session sends what a handler wrote only once the handler's turn of the event
  // loop returns: the stages' onEnd, the audit record and the metrics wait for the next
  // immediate, so they never hold the last answer (or the other answers of the same read) back.
  function openWithEnd(refuseRequest = false) {
    const seen: { answersAtEnd?: number } = {};
    let written: () => number = () => -1;
    // Notes how many answers were written when onEnd ran.
    const s = openWithStage({
      onRequestHeaders: () => {
        if (refuseRequest) throw refuse('endpoint_not_allowed', 'not this one');
      },
      onEnd: () => {
        seen.answersAtEnd = written();
      },
    });
    written = () => s.call.written.length;
    return { s, seen };
  }

  it('the last answer is written first; onEnd and the record come in the next immediate', async () => {
    const { s, seen } = openWithEnd();
    s.send(get);
    s.send(responseHeaders(200));
    expect(s.call.written).toHaveLength(2);
    expect(seen.answersAtEnd).toBeUndefined();
    expect(s.record()).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(seen.answersAtEnd).toBe(2);
    expect(s.record()).toMatchObject({ outcome: 'completed', status: 200 });
    s.call.emit('end');
    await s.done;
  });

  it('a refusal too: its ImmediateResponse is written before the record', async () => {
    const { s, seen } = openWithEnd(true);
    s.send(get);
    expect(s.call.written.map((w) => Object.keys(w)[0])).toEqual(['immediateResponse']);
    expect(s.record()).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(seen.answersAtEnd).toBe(1);
    expect(s.record()).toMatchObject({ outcome: 'rejected', status: 403 });
    s.call.emit('end');
    await s.done;
  });
});

describe("a read-only stage's response events are decoded after the chunk's answer", () => {
  // Metering keeps the delivered text of a stream event by event; nothing it does changes the
  // chunk, so the chunk is answered first and its events decoded in the next immediate (or by
  // the next chunk, or at the end), never on the chunk's trip.
  const chat = headers({ ':method': 'POST', ':path': '/v1/chat/completions', ':authority': 'a' });
  const sseHeaders: ProcessingRequest = {
    request: 'responseHeaders',
    responseHeaders: {
      headers: {
        headers: [
          { key: ':status', rawValue: Buffer.from('200') },
          { key: 'content-type', rawValue: Buffer.from('text/event-stream') },
        ],
      },
      endOfStream: false,
    },
  };
  const chunk = (text: string, endOfStream: boolean): ProcessingRequest => ({
    request: 'responseBody',
    responseBody: { body: Buffer.from(text), endOfStream },
  });
  const event = (content: string) =>
    `data: ${JSON.stringify({ model: 'm-served', choices: [{ index: 0, delta: { content } }] })}\n\n`;

  /** A fake stream with a read-only stage that notes each event's text and the answers
   * written by then, its request answered up to the response headers. */
  function openReading() {
    const seen: { text: string; answers: number }[] = [];
    let written: () => number = () => -1;
    // Reads the delivered text, as metering does.
    const s = openWithStage({
      onResponseHeaders: (ctx) => ctx.readResponseBody({ withholdUsageEvent: false, observeEvents: true }),
      onResponseEvent: (_ctx, e) => {
        seen.push({ text: e.texts.map((t) => t.text).join(''), answers: written() });
      },
    });
    written = () => s.call.written.length;
    s.send(chat);
    s.send(body('{"model":"m","messages":[],"stream":true}'));
    s.send(sseHeaders);
    return { s, seen };
  }

  it('each event reaches the stage once its chunk is answered, in order, all of them before the record', async () => {
    const { s, seen } = openReading();
    expect(s.call.written).toHaveLength(3);
    s.send(chunk(event('a') + event('b'), false));
    expect(s.call.written).toHaveLength(4);
    expect(seen).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([
      { text: 'a', answers: 4 },
      { text: 'b', answers: 4 },
    ]);
    // Two chunks in one turn: the second hands the first's events over before its own.
    s.send(chunk(event('c'), false));
    s.send(chunk(event('d'), false));
    expect(seen.map((e) => e.text)).toEqual(['a', 'b', 'c']);
    // The last chunk: its events are decoded before its answer (the record and the final
    // metadata name the served model).
    s.send(chunk(`${event('e')}data: [DONE]\n\n`, true));
    expect(seen.map((e) => e.text)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(seen.at(-1)!.answers).toBe(6);
    await new Promise((r) => setImmediate(r));
    expect(s.record()).toMatchObject({ outcome: 'completed', gen_ai: { response: { model: 'm-served' } } });
    s.call.emit('end');
    await s.done;
  });

  it("a stream Envoy cancels mid-way still hands the answered chunks' events over before the record", async () => {
    const { s, seen } = openReading();
    s.send(chunk(event('a'), false));
    s.call.emit('cancelled');
    await s.done;
    expect(seen).toEqual([{ text: 'a', answers: 4 }]);
    expect(s.record()).toMatchObject({ outcome: 'cancelled', gen_ai: { response: { model: 'm-served' } } });
  });
});

describe('a stream Envoy ends with a message unanswered says so in its record', () => {
  // Envoy's message_timeout ends the stream (and answers the client 504 under
  // failure_mode_allow: false); from the gate it looks like a client going away, so the record
  // names what was unanswered and both causes.
  const chat = headers({ ':method': 'POST', ':path': '/v1/chat/completions', ':authority': 'a' });
  // Answers the request headers only when the request is aborted.
  const holding = () =>
    openWithStage({
      onRequestHeaders: (ctx) => new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r())),
    });

  for (const how of ['end', 'cancelled'] as const) {
    it(`a message being decided (${how})`, async () => {
      const s = holding();
      s.send(chat);
      s.call.emit(how);
      await s.done;
      expect(s.record()).toMatchObject({ outcome: 'cancelled', status: null });
      expect(s.record()!.failure).toMatch(
        /while its requestHeaders awaited the gate's answer \(\d+ ms\): Envoy's message_timeout, or the client went away$/,
      );
    });
  }

  it('a message behind it, and one still arriving', async () => {
    const s = holding();
    s.send(chat);
    s.send(body('{}'));
    s.call.emit('end');
    await s.done;
    // The one being decided is named: the queued body has not been sent an answer for either.
    expect(s.record()!.failure).toMatch(/while its requestHeaders awaited/);

    const t = open();
    t.send(chat);
    t.stream.onArriving();
    t.call.emit('end');
    await t.done;
    expect(t.record()!.failure).toMatch(/while a message was still arriving \(its first bytes \d+ ms before\)/);
  });

  it('nothing unanswered: the plain reason', async () => {
    const s = open();
    s.send(chat);
    s.call.emit('end');
    await s.done;
    expect(s.record()!.failure).toBe('envoy closed the stream before the request completed');
  });
});
