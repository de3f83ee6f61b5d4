// A message the gate cannot decode, over a real gRPC stream (raw HTTP/2, as Envoy's frames
// arrive): the gate's gRPC server ends the stream with INTERNAL, whatever codec threw, and tells its
// stream it was cancelled. Envoy then fails the request closed (failure_mode_allow: false).
// Either way the stream leaves exactly one audit record, as a broken-off stream does.
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProcessingResponse, encodeProcessingRequest } from '../../extproc/server/protocol.ts';
import { headers } from '../harness/ext-proc-client.ts';
import { grpcFrame } from '../harness/grpc-frame.ts';
import { type InProcessGate, startInProcessGate } from '../harness/in-process-gate.ts';

let gate: InProcessGate;
beforeAll(async () => {
  gate = await startInProcessGate([], { extra: { pipeline: { stages: [] } } });
});
afterAll(async () => {
  await gate.stop();
});

interface Outcome {
  answers: string[];
  grpcStatus: string | undefined;
}

/** Writes the messages one after the other (each after the previous answer, if any) and
 * collects the answers and the grpc-status trailer. */
function exchange(messages: Buffer[], answersBeforeNext: number[]): Promise<Outcome> {
  const session = connect(`http://127.0.0.1:${gate.server.grpcPort}`);
  session.on('error', () => undefined);
  return new Promise<Outcome>((resolve) => {
    const answers: string[] = [];
    let grpcStatus: string | undefined;
    const s = session.request({
      ':method': 'POST',
      ':path': '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let sent = 0;
    const sendNext = () => {
      while (sent < messages.length && answers.length >= (answersBeforeNext[sent] ?? 0)) s.write(messages[sent++]!);
    };
    // The gate's status ends its side; the client's side is ours to close then.
    s.on('response', (h) => {
      if (h['grpc-status'] === undefined) return;
      grpcStatus = String(h['grpc-status']);
      s.close();
    });
    s.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status']);
      s.close();
    });
    s.on('data', (d: Buffer) => {
      for (let off = 0; off + 5 <= d.length; ) {
        const len = d.readUInt32BE(off + 1);
        const answer = decodeProcessingResponse(d.subarray(off + 5, off + 5 + len));
        answers.push(Object.keys(answer).find((k) => k !== 'dynamicMetadata') ?? '');
        off += 5 + len;
      }
      sendNext();
    });
    s.on('close', () => {
      session.close();
      resolve({ answers, grpcStatus });
    });
    s.on('error', () => undefined);
    sendNext();
  });
}

const INTERNAL = '13';

describe('a malformed ext_proc message', () => {
  it('as the first message: the stream ends with INTERNAL, nothing answered, one cancelled record', async () => {
    const before = (await gate.auditRecords()).length;
    // a length running past the message's end
    const got = await exchange([grpcFrame(Buffer.from([0x12, 0x05, 0x1a, 0x00]))], [0]);
    expect(got).toEqual({ answers: [], grpcStatus: INTERNAL });
    const records = (await gate.waitAudit(before + 1)).slice(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'cancelled', status: null });
    expect(gate.server.activeStreams).toBe(0);
  });

  it('after the request headers: the headers are answered, then INTERNAL, and the request keeps one record', async () => {
    const before = (await gate.auditRecords()).length;
    const first = grpcFrame(
      encodeProcessingRequest({
        requestHeaders: headers({ ':method': 'POST', ':path': '/v1/chat/completions', 'x-request-id': 'garbled' }),
      }),
    );
    const garbage = grpcFrame(Buffer.from([0x22, 0x04, 0x0a, 0x09, 0x7f, 0x7f])); // request_body cut short
    const got = await exchange([first, garbage], [0, 1]);
    expect(got).toEqual({ answers: ['requestHeaders'], grpcStatus: INTERNAL });
    const records = (await gate.waitAudit(before + 1)).slice(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ request_id: 'garbled', outcome: 'cancelled' });
    expect(gate.server.activeStreams).toBe(0);
  });
});
