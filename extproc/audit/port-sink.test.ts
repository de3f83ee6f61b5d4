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
});
