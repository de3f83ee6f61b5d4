// google.protobuf.Struct encoded by hand, for the dynamic metadata the gate attaches to its
// answers. protobufjs encodes a Struct as nested map entries, each a fork/ldelim pair with an
// operation object per field written: with the per-request metadata that was the largest single
// allocation of the gate's answers (npm run bench:alloc: ~13 KiB a request of ~89). Here sizes
// are computed first and the bytes written into the answer's one buffer (response-codec.ts).
// The wire format is Struct's: map
// entries (key = 1, value = 2) under field 1; Value's oneof null = 1, number = 2 (double),
// string = 3, bool = 4, struct = 5, list = 6; ListValue's values = 1.
import type { ProtoStruct, ProtoValue } from './protocol.ts';
import { delimited, writeVarint } from './wire.ts';

function valueSize(v: ProtoValue): number {
  if ('stringValue' in v) return delimited(Buffer.byteLength(v.stringValue, 'utf8'));
  if ('numberValue' in v) return 9;
  if ('boolValue' in v) return 2;
  if ('nullValue' in v) return 2;
  if ('structValue' in v) return delimited(structSize(v.structValue));
  return delimited(listSize(v.listValue.values));
}

function listSize(values: readonly ProtoValue[]): number {
  let n = 0;
  for (const v of values) n += delimited(valueSize(v));
  return n;
}

function entrySize(key: string, v: ProtoValue): number {
  return delimited(Buffer.byteLength(key, 'utf8')) + delimited(valueSize(v));
}

/** The Struct message's body size (without its own tag and length). */
export function structSize(s: ProtoStruct): number {
  let n = 0;
  for (const key in s.fields) n += delimited(entrySize(key, s.fields[key]!));
  return n;
}

function writeString(buf: Buffer, pos: number, tag: number, s: string): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, Buffer.byteLength(s, 'utf8'));
  return pos + buf.write(s, pos, 'utf8');
}

function writeValue(buf: Buffer, pos: number, v: ProtoValue): number {
  if ('stringValue' in v) return writeString(buf, pos, 0x1a, v.stringValue);
  if ('numberValue' in v) {
    buf[pos++] = 0x11;
    buf.writeDoubleLE(v.numberValue, pos);
    return pos + 8;
  }
  if ('boolValue' in v) {
    buf[pos++] = 0x20;
    buf[pos++] = v.boolValue ? 1 : 0;
    return pos;
  }
  if ('nullValue' in v) {
    buf[pos++] = 0x08;
    buf[pos++] = 0;
    return pos;
  }
  if ('structValue' in v) {
    buf[pos++] = 0x2a;
    pos = writeVarint(buf, pos, structSize(v.structValue));
    return writeStruct(buf, pos, v.structValue);
  }
  buf[pos++] = 0x32;
  pos = writeVarint(buf, pos, listSize(v.listValue.values));
  for (const item of v.listValue.values) {
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, valueSize(item));
    pos = writeValue(buf, pos, item);
  }
  return pos;
}

/** The Struct message's body, sized by structSize. */
export function writeStruct(buf: Buffer, pos: number, s: ProtoStruct): number {
  for (const key in s.fields) {
    const v = s.fields[key]!;
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, entrySize(key, v));
    pos = writeString(buf, pos, 0x0a, key);
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, valueSize(v));
    pos = writeValue(buf, pos, v);
  }
  return pos;
}
