// The hand-written ProcessingRequest decoder against protobufjs (the reference, kept here only):
// for generated requests, every oneof member, unknown fields at every level and fields the gate
// does not read, it decodes what protobufjs decodes, projected onto the shapes the gate reads
// (protocol.ts); truncated and malformed buffers throw.
import { describe, expect, it } from 'vitest';
import { readPeerFacts } from './attributes.ts';
import { encodeProcessingRequest, headerValueOf, type ProcessingRequest, ProcessingResponseType } from './protocol.ts';
import { decodeProcessingRequest } from './request-codec.ts';

const RequestType = ProcessingResponseType.root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');

// ---- protobufjs' decoding, projected onto the gate's shapes ----

type Obj = Record<string, any>;
const PHASES = [
  'requestHeaders',
  'responseHeaders',
  'requestBody',
  'responseBody',
  'requestTrailers',
  'responseTrailers',
] as const;

const headerMap = (m: Obj | undefined) =>
  m === undefined
    ? undefined
    : { headers: (m.headers ?? []).map((h: Obj) => ({ key: h.key ?? '', value: headerValueOf(h as never) })) };

function value(v: Obj | null): Obj {
  if (v === null || v.kind === undefined) return {};
  const k = v.kind as string;
  if (k === 'structValue') return { kind: k, structValue: struct(v.structValue) };
  if (k === 'listValue') return { kind: k, listValue: { values: (v.listValue.values ?? []).map(value) } };
  return { kind: k, [k]: v[k] };
}
function struct(s: Obj | null): Obj {
  const fields: Obj = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) fields[k] = value(v as Obj);
  return { fields };
}

function expected(buf: Buffer): ProcessingRequest {
  const o = RequestType.toObject(RequestType.decode(buf), { oneofs: true, defaults: false }) as Obj;
  const m: Obj = {};
  if (o.request !== undefined) {
    m.request = o.request;
    const x = o[o.request] as Obj;
    const y: Obj = {};
    if (o.request.endsWith('Headers')) {
      if (x.headers !== undefined) y.headers = headerMap(x.headers);
      if (x.endOfStream !== undefined) y.endOfStream = x.endOfStream;
    } else if (o.request.endsWith('Body')) {
      if (x.body !== undefined) y.body = x.body;
      if (x.endOfStream !== undefined) y.endOfStream = x.endOfStream;
    } else if (x.trailers !== undefined) y.trailers = headerMap(x.trailers);
    m[o.request] = y;
  }
  if (o.attributes !== undefined) {
    m.attributes = {};
    for (const [k, s] of Object.entries(o.attributes)) m.attributes[k] = struct(s as Obj);
  }
  if (o.observabilityMode !== undefined) m.observabilityMode = o.observabilityMode;
  if (o.protocolConfig !== undefined) m.protocolConfig = o.protocolConfig;
  return m;
}

/** Buffers as base64 (a large body compares as one string), undefined members dropped. */
function norm(x: unknown): unknown {
  if (Buffer.isBuffer(x)) return `bytes:${x.toString('base64')}`;
  if (Array.isArray(x)) return x.map(norm);
  if (x === null || typeof x !== 'object') return x;
  const out: Obj = {};
  for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = norm(v);
  return out;
}

function expectSameDecoding(buf: Buffer): void {
  expect(norm(decodeProcessingRequest(buf))).toEqual(norm(expected(buf)));
}

// ---- a tiny wire writer, for unknown fields and field orders protobufjs would not write ----

const varint = (n: number): number[] => {
  const out: number[] = [];
  let lo = n >>> 0;
  let hi = Math.floor(n / 4294967296) >>> 0;
  while (hi !== 0 || lo > 0x7f) {
    out.push((lo & 0x7f) | 0x80);
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out.push(lo);
  return out;
};
const key = (field: number, wt: number) => varint(field * 8 + wt);
const ld = (field: number, body: Buffer | number[]) => Buffer.from([...key(field, 2), ...varint(body.length), ...body]);
const vi = (field: number, n: number) => Buffer.from([...key(field, 0), ...varint(n)]);
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

// ---- generated requests ----

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed: number) {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const chance = (q: number) => r() < q;
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

  function bytes(): Buffer {
    const size = chance(0.02) ? 128 * 1024 + int(60_000) : chance(0.2) ? 0 : int(60);
    const out = Buffer.alloc(size, int(256));
    for (let i = 0; i < Math.min(size, 64); i++) out[int(size)] = int(256);
    return out;
  }
  const NAMES = [':authority', ':path', 'content-type', 'x-request-id', 'authorization', '', 'x-ümlaut', 'x-☃'];
  const header = (): Obj => {
    const h: Obj = { key: pick(NAMES) };
    if (chance(0.9)) h.rawValue = bytes();
    if (chance(0.15)) h.value = pick(['', 'v', 'välue ☃']);
    return h;
  };
  const headers = (): Obj => ({ headers: Array.from({ length: int(30) }, header) });
  const unknown = (): Buffer => {
    const field = 100 + int(400);
    switch (int(5)) {
      case 0:
        return vi(field, int(2 ** 31) * 3);
      case 1:
        return Buffer.from([...key(field, 1), ...Array.from({ length: 8 }, () => int(256))]);
      case 2:
        return ld(field, bytes());
      case 3:
        return Buffer.from([...key(field, 5), 1, 2, 3, 4]);
      default:
        return Buffer.from([...key(field, 3), ...vi(1, 7), ...ld(2, [1, 2]), ...key(field, 4)]);
    }
  };
  const json = (depth: number): unknown => {
    switch (int(depth > 3 ? 4 : 6)) {
      case 0:
        return null;
      case 1:
        return pick([0, -1, 1.5, 2 ** 53, 1e308]);
      case 2:
        return pick(['', 'spiffe://a/b', 'é☃🦄', 'x'.repeat(300)]);
      case 3:
        return chance(0.5);
      case 4:
        return Array.from({ length: int(4) }, () => json(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: int(4) }, (_, i) => [`k${i}`, json(depth + 1)]));
    }
  };
  const toValue = (v: unknown): Obj => {
    if (v === null) return { nullValue: 0 };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
    return { structValue: toStructObj(v as Obj) };
  };
  const toStructObj = (o: Obj): Obj => ({
    fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)])),
  });

  /** A plain object in protobufjs' form, every oneof member and every field the gate reads,
   * plus fields the gate does not read. */
  function message(): Obj {
    const phase = pick(PHASES);
    const m: Obj = {};
    if (phase.endsWith('Headers')) {
      const h: Obj = {};
      if (chance(0.9)) h.headers = headers();
      if (chance(0.5)) h.endOfStream = chance(0.5);
      if (chance(0.1)) h.attributes = { x: toStructObj({ a: 1 }) }; // deprecated, not read
      m[phase] = h;
    } else if (phase.endsWith('Body')) {
      const body: Obj = {};
      if (chance(0.8)) body.body = bytes();
      if (chance(0.6)) body.endOfStream = chance(0.5);
      if (chance(0.1)) body.endOfStreamWithoutMessage = true; // not read
      m[phase] = body;
    } else m[phase] = chance(0.7) ? { trailers: headers() } : {};
    if (chance(0.3)) {
      m.attributes = {
        'envoy.filters.http.ext_proc': toStructObj({
          'connection.mtls': chance(0.5),
          'connection.uri_san_peer_certificate': 'spiffe://example.org/a',
          other: json(0),
        }),
      };
      if (chance(0.3)) m.attributes.second = toStructObj({ x: json(1) });
    }
    if (chance(0.3)) m.observabilityMode = chance(0.5);
    if (chance(0.4)) {
      m.protocolConfig = {};
      if (chance(0.8)) m.protocolConfig.requestBodyMode = int(6);
      if (chance(0.6)) m.protocolConfig.responseBodyMode = chance(0.05) ? -1 : int(6);
      if (chance(0.4)) m.protocolConfig.sendBodyWithoutWaitingForHeaderResponse = chance(0.5);
    }
    if (chance(0.1)) m.metadataContext = { filterMetadata: { a: toStructObj({ b: 'c' }) } }; // not read
    return m;
  }

  /** protobufjs' bytes for a generated message, sometimes with unknown fields appended. */
  return { message, unknown, bytes: () => encodeProcessingRequest(message()), chance, int, header };
}

describe('request codec: generated requests', () => {
  it('3,000 generated requests decode as protobufjs decodes them', () => {
    const g = generator(0xdec0de);
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const m = g.message();
      let buf = encodeProcessingRequest(m);
      if (g.chance(0.3)) buf = cat(buf, g.unknown(), g.unknown());
      seen.add(Object.keys(m).find((k) => (PHASES as readonly string[]).includes(k))!);
      try {
        expectSameDecoding(buf);
      } catch (e) {
        throw new Error(`message ${i} (${buf.toString('hex').slice(0, 200)}…): ${(e as Error).message}`);
      }
    }
    expect([...seen].sort()).toEqual([...PHASES].sort());
  });

  it('unknown fields nested in every message, and fields out of order, are skipped', () => {
    const g = generator(7);
    for (let i = 0; i < 300; i++) {
      const u = g.unknown;
      const hv = cat(u(), ld(3, Buffer.from('v\xe9', 'latin1')), u(), ld(1, Buffer.from('x-k')), u());
      const map = cat(u(), ld(1, hv), u(), ld(1, hv));
      const headers = cat(vi(3, 1), u(), ld(1, map), u());
      const value = cat(u(), vi(4, 1), u());
      const entry = cat(ld(2, value), u(), ld(1, Buffer.from('connection.mtls')));
      const attrs = ld(9, cat(ld(2, cat(u(), ld(1, entry))), ld(1, Buffer.from('envoy.filters.http.ext_proc'))));
      const pc = ld(11, cat(u(), vi(2, 2), u(), vi(1, 1)));
      const buf = cat(u(), pc, attrs, vi(10, 1), ld(2, headers), u());
      expectSameDecoding(buf);
      const m = decodeProcessingRequest(buf);
      expect(m.requestHeaders?.headers?.headers).toEqual([
        { key: 'x-k', value: 'v\xe9' },
        { key: 'x-k', value: 'v\xe9' },
      ]);
      expect(readPeerFacts(m.attributes)?.mtls).toBe(true);
    }
  });

  it('a body is a view of the frame, not a copy', () => {
    const frame = encodeProcessingRequest({ requestBody: { body: Buffer.from('{"model":"m"}'), endOfStream: true } });
    const body = decodeProcessingRequest(frame).requestBody?.body as Buffer;
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(body.buffer).toBe(frame.buffer);
    expect(body.toString()).toBe('{"model":"m"}');
  });

  it('a header value comes from raw_value when non-empty, else from value (headerValueOf’s rule)', () => {
    const m = decodeProcessingRequest(
      encodeProcessingRequest({
        requestHeaders: {
          headers: {
            headers: [
              { key: 'a', value: 'text', rawValue: Buffer.from([0xff, 0x41]) },
              { key: 'b', value: 'text', rawValue: Buffer.alloc(0) },
              { key: 'c' },
            ],
          },
        },
      }),
    );
    expect(m.requestHeaders?.headers?.headers).toEqual([
      { key: 'a', value: '\xffA' },
      { key: 'b', value: 'text' },
      { key: 'c', value: '' },
    ]);
  });

  it('the request oneof: the last member on the wire is the one set', () => {
    const buf = cat(ld(2, vi(3, 1)), ld(4, cat(ld(1, Buffer.from('b')), vi(2, 1))));
    const m = decodeProcessingRequest(buf);
    expect(m.request).toBe('requestBody');
    expect(m.requestHeaders).toBeUndefined();
    expect(m.requestBody?.endOfStream).toBe(true);
  });

  it('an attribute key __proto__ is data, not a prototype', () => {
    const entry = cat(ld(1, Buffer.from('__proto__')), ld(2, ld(1, cat(ld(1, Buffer.from('k')), ld(2, vi(4, 1))))));
    const m = decodeProcessingRequest(ld(9, entry));
    expect(Object.getPrototypeOf(m.attributes)).toBe(Object.prototype);
    expect(Object.keys(m.attributes ?? {})).toEqual(['__proto__']);
  });
});

describe('request codec: malformed input throws', () => {
  const g = generator(99);
  const samples = Array.from({ length: 60 }, () => encodeProcessingRequest(g.message())).filter((b) => b.length > 0);

  it('every truncation either throws in both decoders or decodes the same in both', () => {
    let threw = 0;
    for (const buf of samples) {
      const cuts = new Set([1, 2, 3, buf.length - 1, ...Array.from({ length: 20 }, () => 1 + g.int(buf.length - 1))]);
      for (const cut of cuts) {
        const short = buf.subarray(0, cut);
        let reference: unknown;
        try {
          reference = expected(short);
        } catch {
          reference = undefined;
        }
        if (reference === undefined) {
          expect(() => decodeProcessingRequest(short)).toThrow(RangeError);
          threw++;
        } else expect(norm(decodeProcessingRequest(short))).toEqual(norm(reference));
      }
    }
    expect(threw).toBeGreaterThan(100);
  });

  const cases: [string, Buffer][] = [
    ['a truncated varint', Buffer.from([0x10, 0x80])],
    ['a tag cut short', Buffer.from([0x80])],
    ['a length past the end', Buffer.from([0x12, 0x05, 0x1a, 0x00])],
    ['a nested length past its message', ld(2, Buffer.from([0x0a, 0x09, 0x0a, 0x01]))],
    ['a varint over ten bytes', Buffer.from([0x50, ...Array(10).fill(0xff), 0x01])],
    ['wire type 6', Buffer.from([0x7e])],
    ['wire type 7', Buffer.from([0x7f])],
    ['an end group without a start', Buffer.from([0xa4, 0x06])],
    ['an unterminated group', Buffer.from([0xa3, 0x06, 0x08, 0x01])],
    ['field number 0', Buffer.from([0x00, 0x01])],
    ['an eight-byte field cut short', Buffer.from([0xa1, 0x06, 1, 2, 3])],
    ['a four-byte field cut short', Buffer.from([0xa5, 0x06, 1, 2])],
    ['a number value cut short', ld(9, ld(2, ld(1, ld(2, Buffer.from([0x11, 1, 2])))))],
  ];
  let deep: Buffer = ld(1, Buffer.from('k'));
  for (let i = 0; i < 60; i++) deep = ld(1, cat(ld(1, Buffer.from('k')), ld(2, ld(5, deep))));
  cases.push(['a Struct nested over 100 deep', ld(9, cat(ld(1, Buffer.from('a')), ld(2, deep)))]);

  for (const [name, buf] of cases) {
    it(`${name}`, () => {
      expect(() => decodeProcessingRequest(buf)).toThrow(RangeError);
      // protobufjs refused it too, except field number 0, which it skips and protobuf's C++
      // parser (Envoy's) refuses.
      if (name !== 'field number 0') expect(() => RequestType.decode(buf)).toThrow();
    });
  }

  it('random garbage throws a RangeError or decodes; it never fails otherwise', () => {
    const r = rng(1234);
    let threw = 0;
    for (let i = 0; i < 5000; i++) {
      const buf = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256)));
      try {
        decodeProcessingRequest(buf);
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
        threw++;
      }
    }
    expect(threw).toBeGreaterThan(1000);
  });

  it('the decoder is usable again after a throw', () => {
    expect(() => decodeProcessingRequest(Buffer.from([0x12, 0x05]))).toThrow();
    expect(decodeProcessingRequest(ld(2, vi(3, 1)))).toEqual({
      request: 'requestHeaders',
      requestHeaders: { endOfStream: true },
    });
  });
});
