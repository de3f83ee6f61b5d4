// The ext_proc wire protocol: proto loading, the codec grpc-js uses per message, and builders for
// every ProcessingResponse the gate sends. Stages never build protocol messages; the stream
// state machine does, through this module, so each phase's answer is shaped in one place.
//
// Codec: the messages grpc-js carries on the gate's hot path are decoded and encoded by hand
// (request-codec.ts, response-codec.ts), health checks too (health-codec.ts). protobufjs
// reflection stays for the rest: the client side tests play Envoy with, and the reference the
// hand-written codecs are tested against. It is loaded on first use, not by the gate: protobufjs
// and the ext_proc root it builds are ~3 MiB of heap (README "Levers tried").
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';
import { decodeProcessingRequest } from './request-codec.ts';
import { encodeProcessingResponse } from './response-codec.ts';

const PROTOS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'protos');

interface Reflection {
  request: protobuf.Type;
  response: protobuf.Type;
}
let reflection: Reflection | undefined;

function reflect(): Reflection {
  if (reflection !== undefined) return reflection;
  const require = createRequire(import.meta.url);
  const pb = require('protobufjs') as typeof protobuf;
  // google/protobuf/*.proto ship with protobufjs (descriptor.proto is not among its built-ins).
  const wkt = dirname(require.resolve('protobufjs/package.json'));
  const root = new pb.Root();
  // Imports resolve under protos/, except the well-known types, which protobufjs carries.
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? join(wkt, target) : join(PROTOS, target);
  root.loadSync(['envoy/service/ext_proc/v3/external_processor.proto'], { keepCase: false });
  root.resolveAll();
  reflection = {
    request: root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest'),
    response: root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse'),
  };
  return reflection;
}

/** A stand-in for a reflected type that builds the reflection on its first use: the methods
 * are the real type's, bound to it. */
function lazyType(pick: (r: Reflection) => protobuf.Type): protobuf.Type {
  return new Proxy({} as protobuf.Type, {
    get(_target, prop) {
      const real = pick(reflect());
      const value: unknown = Reflect.get(real, prop, real);
      return typeof value === 'function' ? value.bind(real) : value;
    },
  });
}

export const ProcessingResponseType = lazyType((r) => r.response);
const ProcessingRequestType = lazyType((r) => r.request);

// ---- Decoded request shapes (protobufjs camelCase field names) ----

/** request-codec.ts decodes a header to { key, value } with raw_value already in `value`;
 * rawValue is how tests (and protobufjs) spell a header Envoy sent as bytes. */
export interface HeaderValue {
  key: string;
  value?: string;
  rawValue?: Uint8Array;
}
export interface HttpHeaders {
  headers?: { headers?: HeaderValue[] };
  endOfStream?: boolean;
}
export interface HttpBody {
  body?: Uint8Array;
  endOfStream?: boolean;
}
/** ProcessingRequest.protocol_config: the filter's body modes, sent by Envoy (≥1.34) in the
 * first message of each stream, except in observability mode. Absent fields read as 0/false. */
export interface ProtocolConfig {
  requestBodyMode?: number;
  responseBodyMode?: number;
  sendBodyWithoutWaitingForHeaderResponse?: boolean;
}
export interface HttpTrailers {
  trailers?: { headers?: HeaderValue[] };
}

/** One message from Envoy. `request` names the oneof member that is set (undefined when none). */
export interface ProcessingRequest {
  request?:
    | 'requestHeaders'
    | 'responseHeaders'
    | 'requestBody'
    | 'responseBody'
    | 'requestTrailers'
    | 'responseTrailers';
  requestHeaders?: HttpHeaders;
  responseHeaders?: HttpHeaders;
  requestBody?: HttpBody;
  responseBody?: HttpBody;
  requestTrailers?: HttpTrailers;
  responseTrailers?: HttpTrailers;
  attributes?: Record<string, unknown>;
  observabilityMode?: boolean;
  /** Absent when Envoy did not send it (null in protobufjs' decoding, which tests may use). */
  protocolConfig?: ProtocolConfig | null;
}

export type Phase = NonNullable<ProcessingRequest['request']>;

export { decodeProcessingRequest };

/** protobufjs' encoding of a request: what Envoy sends, for tests that play Envoy. */
export function encodeProcessingRequest(msg: object): Buffer {
  return Buffer.from(ProcessingRequestType.encode(msg as protobuf.Message).finish());
}

export { encodeProcessingResponse };

export function decodeProcessingResponse(buf: Buffer): ProcessingResponse {
  return ProcessingResponseType.toObject(ProcessingResponseType.decode(buf), {
    longs: Number,
    enums: Number,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  }) as ProcessingResponse;
}

// ---- Responses ----

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode */
export const BodySendMode = {
  NONE: 0,
  STREAMED: 1,
  BUFFERED: 2,
  BUFFERED_PARTIAL: 3,
  FULL_DUPLEX_STREAMED: 4,
} as const;
export type BodySendModeName = keyof typeof BodySendMode;
/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode */
export const HeaderSendMode = { DEFAULT: 0, SEND: 1, SKIP: 2 } as const;

export interface HeaderMutation {
  setHeaders?: { header: { key: string; rawValue: Buffer } }[];
  removeHeaders?: string[];
}
export interface CommonResponse {
  headerMutation?: HeaderMutation;
  /** streamedResponse: the only body mutation Envoy takes in FULL_DUPLEX_STREAMED mode, where
   * it forwards no body byte the processor does not send back. */
  bodyMutation?: { body?: Buffer; clearBody?: boolean; streamedResponse?: StreamedBodyResponse };
  clearRouteCache?: boolean;
}
export interface StreamedBodyResponse {
  body?: Buffer;
  endOfStream?: boolean;
}
export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}
export interface ProtoStruct {
  fields: Record<string, ProtoValue>;
}
export type ProtoValue =
  | { nullValue: 0 }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: ProtoStruct }
  | { listValue: { values: ProtoValue[] } };

export interface ProcessingResponse {
  requestHeaders?: { response?: CommonResponse };
  responseHeaders?: { response?: CommonResponse };
  requestBody?: { response?: CommonResponse };
  responseBody?: { response?: CommonResponse };
  requestTrailers?: { headerMutation?: HeaderMutation };
  responseTrailers?: { headerMutation?: HeaderMutation };
  immediateResponse?: ImmediateResponse;
  dynamicMetadata?: ProtoStruct;
  modeOverride?: { responseBodyMode?: number; responseTrailerMode?: number };
  /** Asks Envoy to wait this long for the real answer (bounded by max_message_timeout); Envoy
   * ignores every other field of a response that carries it. */
  overrideMessageTimeout?: { seconds: number; nanos: number };
}

/** Header pairs are set as raw_value: Envoy ≥1.30 reads raw_value when its runtime flag
 * envoy.reloadable_features.send_header_raw_value is on (the default), and rejects a
 * HeaderValue that sets both. Values are latin1 both ways, so header bytes round-trip 1:1. */
export function headerMutation(set: readonly (readonly [string, string])[], remove: readonly string[]): HeaderMutation {
  const m: HeaderMutation = {};
  if (set.length > 0)
    m.setHeaders = set.map(([key, value]) => ({ header: { key, rawValue: Buffer.from(value, 'latin1') } }));
  if (remove.length > 0) m.removeHeaders = remove.slice();
  return m;
}

/** JSON value → google.protobuf.Struct in protobufjs' object form. */
export function toStruct(obj: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const key in obj) {
    const v = obj[key];
    if (v !== undefined) fields[key] = toValue(v);
  }
  return { fields };
}

function toValue(v: unknown): ProtoValue {
  if (v === null) return { nullValue: 0 };
  switch (typeof v) {
    case 'number':
      return { numberValue: v };
    case 'bigint':
      return { numberValue: Number(v) };
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'object':
      if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
      return { structValue: toStruct(v as Record<string, unknown>) };
    default:
      return { stringValue: String(v) };
  }
}

/** Header value of a decoded HeaderValue: raw_value when Envoy sent it, else value. */
export function headerValueOf(h: HeaderValue): string {
  const raw = h.rawValue;
  if (raw !== undefined && raw.length > 0) {
    return Buffer.isBuffer(raw) ? raw.toString('latin1') : Buffer.from(raw).toString('latin1');
  }
  return h.value ?? '';
}
