// ProcessingResponse encoded by hand: grpc-js calls this for every answer the gate sends Envoy.
// protobufjs' reflective encoder allocated an operation object per field written and a fork per
// nested message (~17 KiB a governed request, npm run bench:alloc); here two passes over the
// message write it into one buffer (wire.ts's size list).
//
// The bytes are protobufjs' own (response-codec.test.ts checks them byte for byte): fields in
// field-number order, a field written when it is neither undefined nor null (so an explicit
// false, 0 or empty string is written, as protobufjs does), a repeated field when non-empty.
//
// Every field of the ProcessingResponse interface (protocol.ts) is encoded; the field-number
// tables below are typed over those interfaces, so a field added to an interface does not
// compile until it has a number here, and response-codec.test.ts checks that every key the
// gate's builders set is one of these tables' keys.
import type {
  CommonResponse,
  HeaderMutation,
  ImmediateResponse,
  ProcessingResponse,
  StreamedBodyResponse,
} from './protocol.ts';
import { structSize, writeStruct } from './struct-codec.ts';
import {
  delimited,
  endSizes,
  int32Len,
  int64Len,
  LEN,
  open,
  record,
  reserve,
  startSizes,
  tag,
  utf8Size,
  VARINT,
  writeInt32,
  writeInt64,
  writeString,
  writeVarint,
} from './wire.ts';

type Fields<T> = { readonly [K in keyof Required<T>]: number };
type Member<T, K extends keyof T> = NonNullable<T[K]>;

// Field numbers: protos/envoy/service/ext_proc/v3/external_processor.proto and its imports.
export const FIELDS = {
  ProcessingResponse: {
    requestHeaders: 1,
    responseHeaders: 2,
    requestBody: 3,
    responseBody: 4,
    requestTrailers: 5,
    responseTrailers: 6,
    immediateResponse: 7,
    dynamicMetadata: 8,
    modeOverride: 9,
    overrideMessageTimeout: 10,
  } satisfies Fields<ProcessingResponse>,
  /** HeadersResponse and BodyResponse */
  PhaseResponse: { response: 1 } satisfies Fields<Member<ProcessingResponse, 'requestHeaders'>> &
    Fields<Member<ProcessingResponse, 'requestBody'>>,
  TrailersResponse: { headerMutation: 1 } satisfies Fields<Member<ProcessingResponse, 'requestTrailers'>>,
  CommonResponse: { headerMutation: 2, bodyMutation: 3, clearRouteCache: 5 } satisfies Fields<CommonResponse>,
  BodyMutation: { body: 1, clearBody: 2, streamedResponse: 3 } satisfies Fields<Member<CommonResponse, 'bodyMutation'>>,
  StreamedBodyResponse: { body: 1, endOfStream: 2 } satisfies Fields<StreamedBodyResponse>,
  HeaderMutation: { setHeaders: 1, removeHeaders: 2 } satisfies Fields<HeaderMutation>,
  /** envoy.config.core.v3.HeaderValueOption */
  HeaderValueOption: { header: 1 } satisfies Fields<Member<HeaderMutation, 'setHeaders'>[number]>,
  /** envoy.config.core.v3.HeaderValue (raw_value; the gate never sets the string value = 2) */
  HeaderValue: { key: 1, rawValue: 3 } satisfies Fields<Member<HeaderMutation, 'setHeaders'>[number]['header']>,
  ImmediateResponse: { status: 1, headers: 2, body: 3, details: 5 } satisfies Fields<ImmediateResponse>,
  /** envoy.type.v3.HttpStatus */
  HttpStatus: { code: 1 } satisfies Fields<ImmediateResponse['status']>,
  /** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode */
  ProcessingMode: { responseBodyMode: 4, responseTrailerMode: 6 } satisfies Fields<
    Member<ProcessingResponse, 'modeOverride'>
  >,
  /** google.protobuf.Duration */
  Duration: { seconds: 1, nanos: 2 } satisfies Fields<Member<ProcessingResponse, 'overrideMessageTimeout'>>,
} as const;

const F = FIELDS;
const T_REQUEST_HEADERS = tag(F.ProcessingResponse.requestHeaders, LEN);
const T_RESPONSE_HEADERS = tag(F.ProcessingResponse.responseHeaders, LEN);
const T_REQUEST_BODY = tag(F.ProcessingResponse.requestBody, LEN);
const T_RESPONSE_BODY = tag(F.ProcessingResponse.responseBody, LEN);
const T_REQUEST_TRAILERS = tag(F.ProcessingResponse.requestTrailers, LEN);
const T_RESPONSE_TRAILERS = tag(F.ProcessingResponse.responseTrailers, LEN);
const T_IMMEDIATE = tag(F.ProcessingResponse.immediateResponse, LEN);
const T_METADATA = tag(F.ProcessingResponse.dynamicMetadata, LEN);
const T_MODE = tag(F.ProcessingResponse.modeOverride, LEN);
const T_TIMEOUT = tag(F.ProcessingResponse.overrideMessageTimeout, LEN);
const T_PHASE_RESPONSE = tag(F.PhaseResponse.response, LEN);
const T_TRAILERS_MUTATION = tag(F.TrailersResponse.headerMutation, LEN);
const T_HEADER_MUTATION = tag(F.CommonResponse.headerMutation, LEN);
const T_BODY_MUTATION = tag(F.CommonResponse.bodyMutation, LEN);
const T_CLEAR_ROUTE_CACHE = tag(F.CommonResponse.clearRouteCache, VARINT);
const T_BODY = tag(F.BodyMutation.body, LEN);
const T_CLEAR_BODY = tag(F.BodyMutation.clearBody, VARINT);
const T_STREAMED_RESPONSE = tag(F.BodyMutation.streamedResponse, LEN);
const T_STREAMED_BODY = tag(F.StreamedBodyResponse.body, LEN);
const T_STREAMED_END = tag(F.StreamedBodyResponse.endOfStream, VARINT);
const T_SET_HEADER = tag(F.HeaderMutation.setHeaders, LEN);
const T_REMOVE_HEADER = tag(F.HeaderMutation.removeHeaders, LEN);
const T_OPTION_HEADER = tag(F.HeaderValueOption.header, LEN);
const T_KEY = tag(F.HeaderValue.key, LEN);
const T_RAW_VALUE = tag(F.HeaderValue.rawValue, LEN);
const T_STATUS = tag(F.ImmediateResponse.status, LEN);
const T_IMMEDIATE_HEADERS = tag(F.ImmediateResponse.headers, LEN);
const T_IMMEDIATE_BODY = tag(F.ImmediateResponse.body, LEN);
const T_DETAILS = tag(F.ImmediateResponse.details, LEN);
const T_CODE = tag(F.HttpStatus.code, VARINT);
const T_RESPONSE_BODY_MODE = tag(F.ProcessingMode.responseBodyMode, VARINT);
const T_RESPONSE_TRAILER_MODE = tag(F.ProcessingMode.responseTrailerMode, VARINT);
const T_SECONDS = tag(F.Duration.seconds, VARINT);
const T_NANOS = tag(F.Duration.nanos, VARINT);

// Every tag above is one byte (field numbers under 16), which delimited() and the writes assume.

const present = <T>(v: T | undefined | null): v is T => v !== undefined && v !== null;

// ---- sizes (first pass) ----

function headerMutationSize(m: HeaderMutation): number {
  const slot = reserve();
  let n = 0;
  const set = m.setHeaders;
  if (present(set)) {
    for (let i = 0; i < set.length; i++) {
      const h = set[i]!.header;
      const option = reserve();
      if (present(h)) {
        const value = reserve();
        let v = 0;
        if (present(h.key)) v += delimited(utf8Size(h.key));
        if (present(h.rawValue)) v += delimited(h.rawValue.length);
        n += delimited(record(option, delimited(record(value, v))));
      } else {
        n += delimited(record(option, 0));
      }
    }
  }
  const remove = m.removeHeaders;
  if (present(remove)) for (let i = 0; i < remove.length; i++) n += delimited(utf8Size(remove[i]!));
  return record(slot, n);
}

function commonSize(c: CommonResponse): number {
  const slot = reserve();
  let n = 0;
  if (present(c.headerMutation)) n += delimited(headerMutationSize(c.headerMutation));
  const b = c.bodyMutation;
  if (present(b)) {
    // Slots are taken in write order: the mutation's before the streamed response's inside it.
    const mutation = reserve();
    let bn = 0;
    if (present(b.body)) bn += delimited(b.body.length);
    if (present(b.clearBody)) bn += 2;
    const sr = b.streamedResponse;
    if (present(sr)) {
      const streamed = reserve();
      let sn = 0;
      if (present(sr.body)) sn += delimited(sr.body.length);
      if (present(sr.endOfStream)) sn += 2;
      bn += delimited(record(streamed, sn));
    }
    n += delimited(record(mutation, bn));
  }
  if (present(c.clearRouteCache)) n += 2;
  return record(slot, n);
}

function phaseSize(p: { response?: CommonResponse }): number {
  const slot = reserve();
  return record(slot, present(p.response) ? delimited(commonSize(p.response)) : 0);
}

function trailersSize(t: { headerMutation?: HeaderMutation }): number {
  const slot = reserve();
  return record(slot, present(t.headerMutation) ? delimited(headerMutationSize(t.headerMutation)) : 0);
}

function immediateSize(r: ImmediateResponse): number {
  const slot = reserve();
  let n = 0;
  if (present(r.status)) {
    const code = r.status.code;
    n += delimited(record(reserve(), present(code) ? 1 + int32Len(code) : 0));
  }
  if (present(r.headers)) n += delimited(headerMutationSize(r.headers));
  if (present(r.body)) n += delimited(r.body.length);
  if (present(r.details)) n += delimited(utf8Size(r.details));
  return record(slot, n);
}

function modeSize(m: Member<ProcessingResponse, 'modeOverride'>): number {
  let n = 0;
  if (present(m.responseBodyMode)) n += 1 + int32Len(m.responseBodyMode);
  if (present(m.responseTrailerMode)) n += 1 + int32Len(m.responseTrailerMode);
  return n;
}

function durationSize(d: Member<ProcessingResponse, 'overrideMessageTimeout'>): number {
  let n = 0;
  if (present(d.seconds)) n += 1 + int64Len(d.seconds);
  if (present(d.nanos)) n += 1 + int32Len(d.nanos);
  return n;
}

function responseSize(m: ProcessingResponse): number {
  let n = 0;
  // Field by field rather than over a list of names: a property load per name stays monomorphic.
  if (present(m.requestHeaders)) n += delimited(phaseSize(m.requestHeaders));
  if (present(m.responseHeaders)) n += delimited(phaseSize(m.responseHeaders));
  if (present(m.requestBody)) n += delimited(phaseSize(m.requestBody));
  if (present(m.responseBody)) n += delimited(phaseSize(m.responseBody));
  if (present(m.requestTrailers)) n += delimited(trailersSize(m.requestTrailers));
  if (present(m.responseTrailers)) n += delimited(trailersSize(m.responseTrailers));
  if (present(m.immediateResponse)) n += delimited(immediateSize(m.immediateResponse));
  if (present(m.dynamicMetadata)) n += delimited(structSize(m.dynamicMetadata));
  if (present(m.modeOverride)) n += delimited(modeSize(m.modeOverride));
  if (present(m.overrideMessageTimeout)) n += delimited(durationSize(m.overrideMessageTimeout));
  return n;
}

// ---- writes (second pass, same order) ----

function writeBytes(buf: Buffer, pos: number, t: number, b: Uint8Array): number {
  buf[pos++] = t;
  const len = b.length;
  pos = writeVarint(buf, pos, len);
  // Short values copy faster in JS than through TypedArray.set.
  if (len < 32) for (let i = 0; i < len; i++) buf[pos + i] = b[i]!;
  else buf.set(b, pos);
  return pos + len;
}

function writeBool(buf: Buffer, pos: number, t: number, v: boolean): number {
  buf[pos++] = t;
  buf[pos++] = v ? 1 : 0;
  return pos;
}

function writeEnum(buf: Buffer, pos: number, t: number, v: number): number {
  buf[pos++] = t;
  return writeInt32(buf, pos, v);
}

function writeHeaderMutation(buf: Buffer, pos: number, t: number, m: HeaderMutation): number {
  pos = open(buf, pos, t);
  const set = m.setHeaders;
  if (present(set)) {
    for (let i = 0; i < set.length; i++) {
      const h = set[i]!.header;
      pos = open(buf, pos, T_SET_HEADER);
      if (!present(h)) continue;
      pos = open(buf, pos, T_OPTION_HEADER);
      if (present(h.key)) pos = writeString(buf, pos, T_KEY, h.key);
      if (present(h.rawValue)) pos = writeBytes(buf, pos, T_RAW_VALUE, h.rawValue);
    }
  }
  const remove = m.removeHeaders;
  if (present(remove)) for (let i = 0; i < remove.length; i++) pos = writeString(buf, pos, T_REMOVE_HEADER, remove[i]!);
  return pos;
}

function writeCommon(buf: Buffer, pos: number, c: CommonResponse): number {
  pos = open(buf, pos, T_PHASE_RESPONSE);
  if (present(c.headerMutation)) pos = writeHeaderMutation(buf, pos, T_HEADER_MUTATION, c.headerMutation);
  const b = c.bodyMutation;
  if (present(b)) {
    pos = open(buf, pos, T_BODY_MUTATION);
    if (present(b.body)) pos = writeBytes(buf, pos, T_BODY, b.body);
    if (present(b.clearBody)) pos = writeBool(buf, pos, T_CLEAR_BODY, b.clearBody);
    const sr = b.streamedResponse;
    if (present(sr)) {
      pos = open(buf, pos, T_STREAMED_RESPONSE);
      if (present(sr.body)) pos = writeBytes(buf, pos, T_STREAMED_BODY, sr.body);
      if (present(sr.endOfStream)) pos = writeBool(buf, pos, T_STREAMED_END, sr.endOfStream);
    }
  }
  if (present(c.clearRouteCache)) pos = writeBool(buf, pos, T_CLEAR_ROUTE_CACHE, c.clearRouteCache);
  return pos;
}

function writePhase(buf: Buffer, pos: number, t: number, p: { response?: CommonResponse }): number {
  pos = open(buf, pos, t);
  if (present(p.response)) pos = writeCommon(buf, pos, p.response);
  return pos;
}

function writeTrailers(buf: Buffer, pos: number, t: number, tr: { headerMutation?: HeaderMutation }): number {
  pos = open(buf, pos, t);
  if (present(tr.headerMutation)) pos = writeHeaderMutation(buf, pos, T_TRAILERS_MUTATION, tr.headerMutation);
  return pos;
}

function writeImmediate(buf: Buffer, pos: number, r: ImmediateResponse): number {
  pos = open(buf, pos, T_IMMEDIATE);
  if (present(r.status)) {
    pos = open(buf, pos, T_STATUS);
    if (present(r.status.code)) pos = writeEnum(buf, pos, T_CODE, r.status.code);
  }
  if (present(r.headers)) pos = writeHeaderMutation(buf, pos, T_IMMEDIATE_HEADERS, r.headers);
  if (present(r.body)) pos = writeBytes(buf, pos, T_IMMEDIATE_BODY, r.body);
  if (present(r.details)) pos = writeString(buf, pos, T_DETAILS, r.details);
  return pos;
}

function writeResponse(buf: Buffer, pos: number, m: ProcessingResponse): number {
  if (present(m.requestHeaders)) pos = writePhase(buf, pos, T_REQUEST_HEADERS, m.requestHeaders);
  if (present(m.responseHeaders)) pos = writePhase(buf, pos, T_RESPONSE_HEADERS, m.responseHeaders);
  if (present(m.requestBody)) pos = writePhase(buf, pos, T_REQUEST_BODY, m.requestBody);
  if (present(m.responseBody)) pos = writePhase(buf, pos, T_RESPONSE_BODY, m.responseBody);
  if (present(m.requestTrailers)) pos = writeTrailers(buf, pos, T_REQUEST_TRAILERS, m.requestTrailers);
  if (present(m.responseTrailers)) pos = writeTrailers(buf, pos, T_RESPONSE_TRAILERS, m.responseTrailers);
  if (present(m.immediateResponse)) pos = writeImmediate(buf, pos, m.immediateResponse);
  if (present(m.dynamicMetadata)) {
    pos = open(buf, pos, T_METADATA);
    pos = writeStruct(buf, pos, m.dynamicMetadata);
  }
  const mode = m.modeOverride;
  if (present(mode)) {
    buf[pos++] = T_MODE;
    pos = writeVarint(buf, pos, modeSize(mode));
    if (present(mode.responseBodyMode)) pos = writeEnum(buf, pos, T_RESPONSE_BODY_MODE, mode.responseBodyMode);
    if (present(mode.responseTrailerMode)) pos = writeEnum(buf, pos, T_RESPONSE_TRAILER_MODE, mode.responseTrailerMode);
  }
  const d = m.overrideMessageTimeout;
  if (present(d)) {
    buf[pos++] = T_TIMEOUT;
    pos = writeVarint(buf, pos, durationSize(d));
    if (present(d.seconds)) {
      buf[pos++] = T_SECONDS;
      pos = writeInt64(buf, pos, d.seconds);
    }
    if (present(d.nanos)) pos = writeEnum(buf, pos, T_NANOS, d.nanos);
  }
  return pos;
}

export function encodeProcessingResponse(m: ProcessingResponse): Buffer {
  return encodeAt(m, 0);
}

/** The message behind gRPC's 5-byte frame header (not compressed, big-endian length): what the
 * server writes to the HTTP/2 stream, built in one buffer. */
export function encodeFramedProcessingResponse(m: ProcessingResponse): Buffer {
  const buf = encodeAt(m, 5);
  buf[0] = 0;
  buf.writeUInt32BE(buf.length - 5, 1);
  return buf;
}

function encodeAt(m: ProcessingResponse, offset: number): Buffer {
  startSizes();
  const size = responseSize(m);
  const buf = Buffer.allocUnsafe(offset + size);
  const end = writeResponse(buf, offset, m);
  // A mismatch would send Envoy a corrupt message: fail the answer instead.
  if (end !== offset + size || !endSizes()) throw new Error(`response codec wrote ${end - offset} of ${size} bytes`);
  return buf;
}
