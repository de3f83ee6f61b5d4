// The hand-written Struct encoder against protobufjs: byte-identical Structs, alone and inside
// whole answers.
import type protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { encodeProcessingResponse, type ProcessingResponse, ProcessingResponseType, toStruct } from './protocol.ts';
import { structSize, writeStruct } from './struct-codec.ts';
import { endSizes, nextSize, startSizes } from './wire.ts';

const StructType = ProcessingResponseType.root.lookupType('google.protobuf.Struct');

const structs: [string, Record<string, unknown>][] = [
  ['empty', {}],
  [
    'the gate metadata',
    { lm_gate: { request_id: 'r-1', tenant: 'acme', stream: true, status: 200, input_tokens: 12 } },
  ],
  ['numbers', { a: 0, b: -1, c: 1.5, d: 2 ** 53 + 2, e: -0, f: Number.MAX_VALUE, g: Number.NaN, h: Infinity }],
  ['null, bool and lists', { n: null, t: true, f: false, l: [1, 'two', null, [3], { four: 4 }], e: [] }],
  ['unicode keys and values', { clé: 'valeur ☃', 名前: '🦄'.repeat(10) }],
  ['long strings (multi-byte lengths)', { s: 'x'.repeat(200), m: 'y'.repeat(20_000), u: 'é'.repeat(70_000) }],
  ['deep nesting', { a: { b: { c: { d: { e: [{ f: { g: 'deep' } }] } } } } }],
  ['many keys', Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i % 2 ? `v${i}` : i]))],
];

describe('struct codec', () => {
  for (const [name, obj] of structs) {
    it(`${name}: the same bytes as protobufjs`, () => {
      const s = toStruct(obj);
      const want = Buffer.from(StructType.encode(s as unknown as protobuf.Message).finish());
      startSizes();
      const got = Buffer.alloc(structSize(s));
      nextSize(); // the Struct's own size, which the field holding it writes
      expect(writeStruct(got, 0, s)).toBe(got.length);
      expect(endSizes()).toBe(true);
      expect(got.equals(want)).toBe(true);
    });

    it(`${name}: an answer carrying it is protobufjs' bytes`, () => {
      const msg: ProcessingResponse = {
        responseHeaders: {
          response: { headerMutation: { setHeaders: [{ header: { key: 'x', rawValue: Buffer.from('y') } }] } },
        },
        modeOverride: { responseBodyMode: 2 },
        dynamicMetadata: toStruct(obj),
      };
      const reference = Buffer.from(ProcessingResponseType.encode(msg as unknown as protobuf.Message).finish());
      const ours = encodeProcessingResponse(msg);
      expect(ours.equals(reference)).toBe(true);
      expect(msg.dynamicMetadata).toEqual(toStruct(obj)); // the caller's message is left as it was
    });
  }
});
