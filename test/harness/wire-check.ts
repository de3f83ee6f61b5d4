// Every answer a fake stream writes (run-stage.ts) is also encoded as grpc-js would send it, by
// the hand-written codec, and compared with protobufjs' bytes: stage tests then cover the codec
// with every answer the state machine builds, including a field the codec does not know.
import type protobuf from 'protobufjs';
import { expect } from 'vitest';
import {
  encodeProcessingResponse,
  type ProcessingResponse,
  ProcessingResponseType,
} from '../../extproc/server/protocol.ts';

export function expectWireBytes(msg: ProcessingResponse): void {
  const ours = encodeProcessingResponse(msg);
  const want = Buffer.from(ProcessingResponseType.encode(msg as unknown as protobuf.Message).finish());
  // Compared only on a difference: expect.soft marks the running test failed and lets it go on.
  if (!ours.equals(want))
    expect.soft(ours.toString('hex'), 'the hand-written codec differs from protobufjs').toBe(want.toString('hex'));
}
