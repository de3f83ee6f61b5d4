import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { FromWorker } from '../server/worker-protocol.ts';
import { BATCH_MS, PortAuditSink } from './port-sink.ts';
import type { AuditRecord } from './record.ts';

const record = (id: string) => ({ request_id: id }) as unknown as AuditRecord;

describe('PortAuditSink', () => {
  it('posts records in order, batched, each a whole line, and flush posts at once', async () => {
    const { port1, port2 } = new MessageChannel();
    const got: FromWorker[] = [];
    port2.on('message', (m: FromWorker) => got.push(m));
    const sink = new PortAuditSink(port1);
    sink.write(record('a'));
    sink.write(record('b'));
    await new Promise((r) => setTimeout(r, BATCH_MS + 20));
    sink.write(record('c'));
    await sink.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([
      { type: 'audit', lines: '{"request_id":"a"}\n{"request_id":"b"}\n', records: 2 },
      { type: 'audit', lines: '{"request_id":"c"}\n', records: 1 },
    ]);
    await sink.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(2);
    port1.close();
  });

  it('posts refusals the audit sink caused apart from the other records, with the facts a tally keys on', async () => {
    const { port1, port2 } = new MessageChannel();
    const got: FromWorker[] = [];
    port2.on('message', (m: FromWorker) => got.push(m));
    const sink = new PortAuditSink(port1);
    const refused = {
      time: '2026-11-24T00:00:00.000Z',
      request_id: 'q',
      principal: null,
      endpoint: { api: 'openai.chat' },
      route: null,
      status: 503,
      error: { code: 'audit_unavailable' },
    } as unknown as AuditRecord;
    sink.write(record('a'));
    sink.write(refused);
    await sink.flush();
    // A batch of refusals alone is posted too.
    sink.write(refused);
    await sink.flush();
    await new Promise((r) => setTimeout(r, 20));
    const facts = {
      line: `${JSON.stringify(refused)}\n`,
      time: '2026-11-24T00:00:00.000Z',
      requestId: 'q',
      tenant: null,
      route: null,
      api: 'openai.chat',
      status: 503,
      code: 'audit_unavailable',
    };
    expect(got).toEqual([
      { type: 'audit', lines: '{"request_id":"a"}\n', records: 1, refusals: [facts] },
      { type: 'audit', lines: '', records: 0, refusals: [facts] },
    ]);
    port1.close();
  });
});
