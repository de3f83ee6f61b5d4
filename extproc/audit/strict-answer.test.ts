// audit.durability strict in the state machine: the request's last answer (a refusal, the
// response headers of a bodiless response, the last body chunk) is held until the sink says
// the record is durable; earlier answers are not; messages after a held answer wait for it.
import { describe, expect, it } from 'vitest';
import { openFakeStream, runStageConfig } from '../../test/harness/run-stage.ts';
import { BodySendMode, type ProcessingRequest } from '../server/protocol.ts';
import type { AuditRecord } from './record.ts';
import type { AuditSink } from './sink.ts';

const headers = (pairs: Record<string, string>, endOfStream = false): ProcessingRequest => ({
  request: 'requestHeaders',
  requestHeaders: {
    headers: { headers: Object.entries(pairs).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })) },
    endOfStream,
  },
  protocolConfig: { requestBodyMode: BodySendMode.BUFFERED, responseBodyMode: BodySendMode.NONE },
});
const responseHeaders = (status: number, endOfStream: boolean): ProcessingRequest => ({
  request: 'responseHeaders',
  responseHeaders: { headers: { headers: [{ key: ':status', rawValue: Buffer.from(String(status)) }] }, endOfStream },
});

/** A strict sink that holds each record's onDurable until the test releases it. */
function heldSink(strict: boolean) {
  const held: (() => void)[] = [];
  const records: AuditRecord[] = [];
  const sink: AuditSink = {
    write: (r, onDurable) => {
      records.push(r);
      if (onDurable) held.push(onDurable);
    },
    accepting: true,
    strict,
    flush: async () => {},
    close: async () => {},
  };
  return { sink, held, records };
}

const tick = () => new Promise((r) => setImmediate(r));
/** The answers, without the override_message_timeout asks. */
const kinds = (written: object[]) =>
  written
    .filter((m) => !('overrideMessageTimeout' in m))
    .map((m) => Object.keys(m).find((k) => k !== 'dynamicMetadata'));

describe('strict durability holds the last answer until the record is durable', () => {
  it('a refusal', async () => {
    const { sink, held, records } = heldSink(true);
    const s = openFakeStream(
      runStageConfig({ stages: ['identity.authenticate'] }),
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      sink,
    );
    s.send(headers({ ':method': 'GET', ':path': '/v1/models', ':authority': 'a' }, true));
    await tick();
    expect(records).toHaveLength(1);
    expect(kinds(s.call.written)).toEqual([]);
    // Envoy is asked to wait for the held answer beyond its message_timeout.
    expect(s.call.written).toEqual([{ overrideMessageTimeout: expect.anything() }]);
    held.shift()!();
    expect(kinds(s.call.written)).toEqual(['immediateResponse']);
    expect(records[0]!.status).toBe(401);
  });

  it('a response without a body: the request headers answer at once, the response headers after the record', async () => {
    const { sink, held, records } = heldSink(true);
    const s = openFakeStream(
      runStageConfig({ stages: [] }),
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      sink,
    );
    s.send(headers({ ':method': 'GET', ':path': '/v1/models', ':authority': 'a' }, true));
    await tick();
    expect(kinds(s.call.written)).toEqual(['requestHeaders']);
    s.send(responseHeaders(204, true));
    await tick();
    expect(records).toHaveLength(1);
    expect(kinds(s.call.written)).toEqual(['requestHeaders']);
    held.shift()!();
    expect(kinds(s.call.written)).toEqual(['requestHeaders', 'responseHeaders']);
  });

  it('without strict durability nothing waits', async () => {
    const { sink, held } = heldSink(false);
    const s = openFakeStream(
      runStageConfig({ stages: [] }),
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      sink,
    );
    s.send(headers({ ':method': 'GET', ':path': '/v1/models', ':authority': 'a' }, true));
    s.send(responseHeaders(204, true));
    await tick();
    expect(held).toEqual([]);
    expect(kinds(s.call.written)).toEqual(['requestHeaders', 'responseHeaders']);
  });
});
