// The hand-written health codec against protobufjs' reflection of grpc.health.v1.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeCheckRequest, decodeCheckResponse, encodeCheckRequest, encodeCheckResponse } from './health-codec.ts';

const root = protobuf.loadSync(
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'protos', 'grpc', 'health', 'v1', 'health.proto'),
);
const Req = root.lookupType('grpc.health.v1.HealthCheckRequest');
const Res = root.lookupType('grpc.health.v1.HealthCheckResponse');
const bytes = (t: protobuf.Type, m: object) => Buffer.from(t.encode(t.fromObject(m)).finish());

describe('health codec', () => {
  const services = ['', 'envoy.service.ext_proc.v3.ExternalProcessor', 'ü'.repeat(100), 'x'.repeat(300)];

  it('encodes as protobufjs does (a proto3 default left out, as protobufjs does when it is unset)', () => {
    for (const service of services) {
      expect(Req.toObject(Req.decode(encodeCheckRequest({ service })), { defaults: true })).toEqual({ service });
      if (service !== '') expect(encodeCheckRequest({ service })).toEqual(bytes(Req, { service }));
    }
    expect(encodeCheckRequest({})).toEqual(bytes(Req, {}));
    for (const status of [0, 1, 2, 3]) {
      expect(Res.toObject(Res.decode(encodeCheckResponse({ status })), { defaults: true })).toEqual({ status });
      if (status !== 0) expect(encodeCheckResponse({ status })).toEqual(bytes(Res, { status }));
    }
  });

  it('decodes what protobufjs encodes, unknown fields skipped', () => {
    for (const service of services) expect(decodeCheckRequest(bytes(Req, { service })).service ?? '').toBe(service);
    for (const status of [0, 1, 2, 3]) expect(decodeCheckResponse(bytes(Res, { status })).status).toBe(status);
    // field 2 varint, field 3 bytes, field 4 fixed64, field 5 fixed32, then field 1.
    const unknown = Buffer.from([
      0x10,
      0x96,
      0x01,
      0x1a,
      0x02,
      0x61,
      0x62,
      0x21,
      ...Array(8).fill(7),
      0x2d,
      1,
      2,
      3,
      4,
    ]);
    expect(decodeCheckRequest(Buffer.concat([unknown, encodeCheckRequest({ service: 'svc' })]))).toEqual({
      service: 'svc',
    });
    expect(decodeCheckResponse(Buffer.concat([unknown, encodeCheckResponse({ status: 2 })]))).toEqual({ status: 2 });
  });

  it('refuses a truncated message', () => {
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/truncated/);
    expect(() => decodeCheckResponse(Buffer.from([0x08, 0x80]))).toThrow(/truncated/);
    expect(() => decodeCheckRequest(Buffer.from([0x0b]))).toThrow(/wire type/);
  });
});
