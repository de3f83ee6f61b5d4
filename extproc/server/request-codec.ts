// ProcessingRequest decoded by hand: grpc-js calls this for every message Envoy sends. It reads
// only what the gate uses (the interfaces in protocol.ts) into plain objects of fixed shape:
// - a header is { key, value }, its value decoded straight from raw_value's bytes to a latin1
//   string (raw_value wins when non-empty, else the string value: headerValueOf's rule), with no
//   Buffer view per header as protobufjs made;
// - a body is a Buffer view of the gRPC frame (no copy), absent when Envoy sent none;
// - attributes are Structs as protobufjs' toObject({ oneofs: true }) shapes them: a Value names
//   its member in `kind` (what attributes.ts reads).
// Any other field (metadata_context, flow control, the deprecated per-message attributes, a
// field newer than our protos) is skipped by its wire type, as is a known field arriving with an
// unexpected wire type (protobuf's rule). Malformed input throws, as protobufjs did: a length or
// varint running past its message, a wire type 6 or 7, an unmatched group end, field number 0,
// nesting over 100; grpc-js answers the stream with INTERNAL.
//
// Decoding is synchronous and not re-entrant, so the input and position live in module state.
import type {
  HeaderValue,
  HttpBody,
  HttpHeaders,
  HttpTrailers,
  ProcessingRequest,
  ProtocolConfig,
} from './protocol.ts';
import { EGROUP, I32, I64, LEN, SGROUP, tag, VARINT } from './wire.ts';

/** protobuf's default recursion limit (protoc's CodedInputStream, protobufjs' Reader). */
const MAX_DEPTH = 100;

const EMPTY = Buffer.alloc(0);
let b: Buffer = EMPTY;
let p = 0;

const T_REQUEST_HEADERS = tag(2, LEN);
const T_RESPONSE_HEADERS = tag(3, LEN);
const T_REQUEST_BODY = tag(4, LEN);
const T_RESPONSE_BODY = tag(5, LEN);
const T_REQUEST_TRAILERS = tag(6, LEN);
const T_RESPONSE_TRAILERS = tag(7, LEN);
const T_ATTRIBUTES = tag(9, LEN);
const T_OBSERVABILITY = tag(10, VARINT);
const T_PROTOCOL_CONFIG = tag(11, LEN);
// HttpHeaders: headers = 1 (HeaderMap), end_of_stream = 3; HttpBody: body = 1, end_of_stream = 2;
// HttpTrailers: trailers = 1 (HeaderMap); HeaderMap: headers = 1; HeaderValue: key = 1,
// value = 2, raw_value = 3; ProtocolConfiguration: request_body_mode = 1,
// response_body_mode = 2, send_body_without_waiting_for_header_response = 3.
const T_1_LEN = tag(1, LEN);
const T_2_LEN = tag(2, LEN);
const T_3_LEN = tag(3, LEN);
const T_1_VARINT = tag(1, VARINT);
const T_2_VARINT = tag(2, VARINT);
const T_3_VARINT = tag(3, VARINT);
// google.protobuf.Value: null = 1 (enum), number = 2 (double), string = 3, bool = 4,
// struct = 5, list = 6; ListValue: values = 1; Struct: fields = 1 (map entries key = 1, value = 2).
const T_NUMBER = tag(2, I64);
const T_BOOL = tag(4, VARINT);
const T_STRUCT = tag(5, LEN);
const T_LIST = tag(6, LEN);

class DecodeError extends RangeError {
  constructor(what: string) {
    super(`malformed ext_proc message: ${what}`);
  }
}
// Buffer's own slices, without toString()'s encoding lookup and argument checks (protobufjs'
// BufferReader reads strings the same way).
interface Slices {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}
const utf8 = (start: number, end: number): string => (b as unknown as Slices).utf8Slice(start, end);
const latin1 = (start: number, end: number): string => (b as unknown as Slices).latin1Slice(start, end);

const truncated = () => new DecodeError('truncated');

/** An unsigned varint's low 32 bits, as protobufjs' uint32() reads it (up to ten bytes). */
function varint(end: number): number {
  if (p < end) {
    const first = b[p]!;
    if (first < 0x80) {
      p++;
      return first;
    }
  }
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (p >= end) throw truncated();
    const byte = b[p++]!;
    result |= (byte & 0x7f) << shift;
    if (byte < 0x80) return result >>> 0;
  }
  // Bytes six to ten carry only bits above 32.
  for (let i = 0; i < 5; i++) {
    if (p >= end) throw truncated();
    if (b[p++]! < 0x80) return result >>> 0;
  }
  throw new DecodeError('varint over ten bytes');
}

/** A length-delimited field's end, checked against its message's. */
function lengthEnd(end: number): number {
  const len = varint(end);
  const e = p + len;
  if (e > end) throw truncated();
  return e;
}

function skip(t: number, end: number, depth: number): void {
  if (t >>> 3 === 0) throw new DecodeError('field number 0');
  switch (t & 7) {
    case VARINT:
      varint(end);
      return;
    case I64:
      if (p + 8 > end) throw truncated();
      p += 8;
      return;
    case LEN:
      p = lengthEnd(end);
      return;
    case SGROUP: {
      if (depth >= MAX_DEPTH) throw new DecodeError('nested too deep');
      const close = (t & ~7) | EGROUP;
      for (;;) {
        if (p >= end) throw truncated();
        const inner = varint(end);
        if (inner === close) return;
        skip(inner, end, depth + 1);
      }
    }
    case I32:
      if (p + 4 > end) throw truncated();
      p += 4;
      return;
    default:
      throw new DecodeError(`wire type ${t & 7}`);
  }
}

function headerValue(end: number): HeaderValue {
  let key = '';
  let value = '';
  let raw = '';
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) {
      const e = lengthEnd(end);
      key = utf8(p, e);
      p = e;
    } else if (t === T_3_LEN) {
      const e = lengthEnd(end);
      raw = latin1(p, e);
      p = e;
    } else if (t === T_2_LEN) {
      const e = lengthEnd(end);
      value = utf8(p, e);
      p = e;
    } else skip(t, end, 0);
  }
  return { key, value: raw !== '' ? raw : value };
}

function headerMap(end: number): { headers: HeaderValue[] } {
  const headers: HeaderValue[] = [];
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) headers.push(headerValue(lengthEnd(end)));
    else skip(t, end, 0);
  }
  return { headers };
}

function httpHeaders(end: number): HttpHeaders {
  const h: HttpHeaders = {};
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) h.headers = headerMap(lengthEnd(end));
    else if (t === T_3_VARINT) h.endOfStream = varint(end) !== 0;
    else skip(t, end, 0);
  }
  return h;
}

function httpBody(end: number): HttpBody {
  const body: HttpBody = {};
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) {
      const e = lengthEnd(end);
      body.body = b.subarray(p, e);
      p = e;
    } else if (t === T_2_VARINT) body.endOfStream = varint(end) !== 0;
    else skip(t, end, 0);
  }
  return body;
}

function httpTrailers(end: number): HttpTrailers {
  const tr: HttpTrailers = {};
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) tr.trailers = headerMap(lengthEnd(end));
    else skip(t, end, 0);
  }
  return tr;
}

function protocolConfig(end: number): ProtocolConfig {
  const pc: ProtocolConfig = {};
  while (p < end) {
    const t = varint(end);
    if (t === T_1_VARINT) pc.requestBodyMode = varint(end) | 0;
    else if (t === T_2_VARINT) pc.responseBodyMode = varint(end) | 0;
    else if (t === T_3_VARINT) pc.sendBodyWithoutWaitingForHeaderResponse = varint(end) !== 0;
    else skip(t, end, 0);
  }
  return pc;
}

// ---- google.protobuf.Struct, in protobufjs' toObject({ oneofs: true }) shape ----

export interface DecodedStruct {
  fields: Record<string, DecodedValue>;
}
export type DecodedValue =
  | Record<string, never>
  | { kind: 'nullValue'; nullValue: number }
  | { kind: 'numberValue'; numberValue: number }
  | { kind: 'stringValue'; stringValue: string }
  | { kind: 'boolValue'; boolValue: boolean }
  | { kind: 'structValue'; structValue: DecodedStruct }
  | { kind: 'listValue'; listValue: { values: DecodedValue[] } };

/** A map entry's key = 1 (string) and value = 2 (message), either possibly absent. */
function mapEntry<V>(end: number, depth: number, readValue: (end: number, depth: number) => V, empty: () => V) {
  let key = '';
  let value: V | undefined;
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) {
      const e = lengthEnd(end);
      key = utf8(p, e);
      p = e;
    } else if (t === T_2_LEN) value = readValue(lengthEnd(end), depth + 1);
    else skip(t, end, depth);
  }
  return [key, value ?? empty()] as const;
}

/** `__proto__` is a key like any other, not the object's prototype. */
function setKey<V>(record: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__')
    Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}

function struct(end: number, depth: number): DecodedStruct {
  if (depth > MAX_DEPTH) throw new DecodeError('nested too deep');
  const fields: Record<string, DecodedValue> = {};
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) {
      const [key, value] = mapEntry(lengthEnd(end), depth, value_, emptyValue);
      setKey(fields, key, value);
    } else skip(t, end, depth);
  }
  return { fields };
}

const emptyValue = (): DecodedValue => ({});
const emptyStruct = (): DecodedStruct => ({ fields: {} });

function value_(end: number, depth: number): DecodedValue {
  if (depth > MAX_DEPTH) throw new DecodeError('nested too deep');
  // A Value's members form a oneof: the last one on the wire wins.
  let v: DecodedValue = {};
  while (p < end) {
    const t = varint(end);
    if (t === T_1_VARINT) v = { kind: 'nullValue', nullValue: varint(end) | 0 };
    else if (t === T_NUMBER) {
      if (p + 8 > end) throw truncated();
      v = { kind: 'numberValue', numberValue: b.readDoubleLE(p) };
      p += 8;
    } else if (t === T_3_LEN) {
      const e = lengthEnd(end);
      v = { kind: 'stringValue', stringValue: utf8(p, e) };
      p = e;
    } else if (t === T_BOOL) v = { kind: 'boolValue', boolValue: varint(end) !== 0 };
    else if (t === T_STRUCT) v = { kind: 'structValue', structValue: struct(lengthEnd(end), depth + 1) };
    else if (t === T_LIST) v = { kind: 'listValue', listValue: { values: list(lengthEnd(end), depth + 1) } };
    else skip(t, end, depth);
  }
  return v;
}

function list(end: number, depth: number): DecodedValue[] {
  if (depth > MAX_DEPTH) throw new DecodeError('nested too deep');
  const values: DecodedValue[] = [];
  while (p < end) {
    const t = varint(end);
    if (t === T_1_LEN) values.push(value_(lengthEnd(end), depth + 1));
    else skip(t, end, depth);
  }
  return values;
}

// ---- the message ----

function request(end: number): ProcessingRequest {
  const m: ProcessingRequest = {};
  while (p < end) {
    const t = varint(end);
    switch (t) {
      case T_REQUEST_HEADERS:
        setMember(m, 'requestHeaders', httpHeaders(lengthEnd(end)));
        break;
      case T_RESPONSE_HEADERS:
        setMember(m, 'responseHeaders', httpHeaders(lengthEnd(end)));
        break;
      case T_REQUEST_BODY:
        setMember(m, 'requestBody', httpBody(lengthEnd(end)));
        break;
      case T_RESPONSE_BODY:
        setMember(m, 'responseBody', httpBody(lengthEnd(end)));
        break;
      case T_REQUEST_TRAILERS:
        setMember(m, 'requestTrailers', httpTrailers(lengthEnd(end)));
        break;
      case T_RESPONSE_TRAILERS:
        setMember(m, 'responseTrailers', httpTrailers(lengthEnd(end)));
        break;
      case T_ATTRIBUTES: {
        const [key, value] = mapEntry(lengthEnd(end), 0, struct, emptyStruct);
        m.attributes ??= {};
        setKey(m.attributes, key, value);
        break;
      }
      case T_OBSERVABILITY:
        m.observabilityMode = varint(end) !== 0;
        break;
      case T_PROTOCOL_CONFIG:
        m.protocolConfig = protocolConfig(lengthEnd(end));
        break;
      default:
        skip(t, end, 0);
    }
  }
  return m;
}

type Member = NonNullable<ProcessingRequest['request']>;

/** The `request` oneof: the last member on the wire is the one set (protobuf's rule). */
function setMember<K extends Member>(m: ProcessingRequest, name: K, value: NonNullable<ProcessingRequest[K]>): void {
  if (m.request !== undefined && m.request !== name) m[m.request] = undefined;
  m.request = name;
  m[name] = value;
}

export function decodeProcessingRequest(buf: Buffer): ProcessingRequest {
  b = buf;
  p = 0;
  try {
    return request(buf.length);
  } finally {
    // The frame is not kept alive past its message (bodies hold their own views of it).
    b = EMPTY;
  }
}
