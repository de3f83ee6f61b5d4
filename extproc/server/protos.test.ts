// The synced protos (protos/, see protos/README.md) carry the ext_proc API of Envoy 1.40.0: the
// fields and enum values newer than the old @grpc/grpc-js-xds copy survive a protobufjs round trip.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
  type ProcessingResponse,
} from './protocol.ts';

const PROTOS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'protos');
const PROTOBUF_WKT = dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'));

// The same resolution protocol.ts's loadRoot uses (that root is not exported).
function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? join(PROTOBUF_WKT, target) : join(PROTOS, target);
  root.loadSync(['envoy/service/ext_proc/v3/external_processor.proto'], { keepCase: false });
  root.resolveAll();
  return root;
}

describe('synced ext_proc protos', () => {
  it('keeps protocol_config in a ProcessingRequest', () => {
    const protocolConfig = { requestBodyMode: 2, responseBodyMode: 0, sendBodyWithoutWaitingForHeaderResponse: false };
    const buf = encodeProcessingRequest({ requestHeaders: { endOfStream: true }, protocolConfig });
    // Field 11, length-delimited: the field exists in the schema, or protobufjs would drop it.
    expect(buf.includes(Buffer.from([(11 << 3) | 2]))).toBe(true);
    const decoded = decodeProcessingRequest(buf) as unknown as { protocolConfig?: Record<string, unknown> };
    expect(decoded.protocolConfig?.requestBodyMode).toBe(2);
    expect(decoded.protocolConfig?.responseBodyMode).toBe(0);
    expect(decoded.protocolConfig?.sendBodyWithoutWaitingForHeaderResponse).toBe(false);
  });

  it('keeps override_message_timeout in a ProcessingResponse', () => {
    const msg = { overrideMessageTimeout: { seconds: 1, nanos: 0 } } as unknown as ProcessingResponse;
    const decoded = decodeProcessingResponse(encodeProcessingResponse(msg)) as unknown as {
      overrideMessageTimeout?: { seconds?: number; nanos?: number };
    };
    expect(decoded.overrideMessageTimeout?.seconds).toBe(1);
    expect(decoded.overrideMessageTimeout?.nanos ?? 0).toBe(0);
  });

  it('knows the Envoy 1.40 schema additions', () => {
    const root = loadRoot();
    const mode = root.lookupEnum('envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode');
    expect(mode.values.FULL_DUPLEX_STREAMED).toBe(4);
    expect(mode.values.GRPC).toBe(5);
    expect(root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest').fields.protocolConfig?.id).toBe(11);
    expect(root.lookupType('envoy.service.ext_proc.v3.BodyMutation').fields.streamedResponse?.id).toBe(3);
    expect(root.lookupType('envoy.service.ext_proc.v3.StreamedBodyResponse').fields.endOfStream?.id).toBe(2);
    expect(root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse').fields.overrideMessageTimeout?.id).toBe(10);
  });
});
