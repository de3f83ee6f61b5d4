// google.protobuf.Struct encoded by hand, for the dynamic metadata the gate attaches to its
// answers. protobufjs encodes a Struct as nested map entries, each a fork/ldelim pair with an
// operation object per field written: with the per-request metadata that was the largest single
// allocation of the gate's answers (npm run bench:alloc: ~13 KiB a request of ~89). Here it is
// part of the answer's two-pass encoding (response-codec.ts, wire.ts's size list): structSize
// records each entry's, value's and string's size once, writeStruct writes them in that order.
// The wire format is Struct's: map
// entries (key = 1, value = 2) under field 1; Value's oneof null = 1, number = 2 (double),
// string = 3, bool = 4, struct = 5, list = 6; ListValue's values = 1.
import type { ProtoStruct, ProtoValue } from './protocol.ts';
import { delimited, open, record, reserve, utf8Size, writeString } from './wire.ts';

/** First pass: records the Struct's body size (its slot first), then its entries'. */
export function structSize(s: ProtoStruct): number {
  const slot = reserve();
  let n = 0;
  const fields = s.fields;
  for (const key in fields) {
    const entry = reserve();
    n += delimited(record(entry, delimited(utf8Size(key)) + delimited(valueSize(fields[key]!))));
  }
  return record(slot, n);
}

function valueSize(v: ProtoValue): number {
  const slot = reserve();
  if ('stringValue' in v) return record(slot, delimited(utf8Size(v.stringValue)));
  if ('numberValue' in v) return record(slot, 9);
  if ('boolValue' in v || 'nullValue' in v) return record(slot, 2);
  if ('structValue' in v) return record(slot, delimited(structSize(v.structValue)));
  const list = reserve();
  let n = 0;
  const values = v.listValue.values;
  for (let i = 0; i < values.length; i++) n += delimited(valueSize(values[i]!));
  return record(slot, delimited(record(list, n)));
}

/** Second pass: the Struct's body, its own slot already consumed by the field that holds it. */
export function writeStruct(buf: Buffer, pos: number, s: ProtoStruct): number {
  const fields = s.fields;
  for (const key in fields) {
    pos = open(buf, pos, 0x0a);
    pos = writeString(buf, pos, 0x0a, key);
    pos = open(buf, pos, 0x12);
    pos = writeValue(buf, pos, fields[key]!);
  }
  return pos;
}

/** A Value's body, its slot already consumed. */
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
  if ('structValue' in v) return writeStruct(buf, open(buf, pos, 0x2a), v.structValue);
  pos = open(buf, pos, 0x32);
  const values = v.listValue.values;
  for (let i = 0; i < values.length; i++) pos = writeValue(buf, open(buf, pos, 0x0a), values[i]!);
  return pos;
}
