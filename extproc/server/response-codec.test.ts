// The hand-written ProcessingResponse encoder against protobufjs (the reference, kept here only):
// the same bytes for every answer shape the gate's builders make, and for many generated
// messages covering every field of the interface; and no key a builder sets is one the encoder
// does not know.
import type protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PhaseOutput } from '../pipeline/context.ts';
import { ERROR_CATALOG, type ErrorCode, refuse } from '../pipeline/errors.ts';
import { commonResponse, immediateResponseFor } from './answers.ts';
import {
  BodySendMode,
  type HeaderMutation,
  HeaderSendMode,
  headerMutation,
  type ProcessingResponse,
  ProcessingResponseType,
  toStruct,
} from './protocol.ts';
import { encodeProcessingResponse, FIELDS } from './response-codec.ts';

const reference = (m: ProcessingResponse): Buffer =>
  Buffer.from(ProcessingResponseType.encode(m as unknown as protobuf.Message).finish());

function expectProtobufjsBytes(m: ProcessingResponse): void {
  const ours = encodeProcessingResponse(m);
  const want = reference(m);
  if (!ours.equals(want)) expect(ours.toString('hex')).toBe(want.toString('hex'));
}

// ---- the shapes the gate sends, from its own builders ----

function out(set: [string, string][] = [], remove: string[] = [], clearRouteCache = false): PhaseOutput {
  const o = new PhaseOutput();
  o.setHeaders.push(...set);
  o.removeHeaders.push(...remove);
  o.clearRouteCache = clearRouteCache;
  return o;
}
const metadata = toStruct({
  lm_gate: { request_id: '6f1c1a3e-4a8b', api: 'openai.chat_completions', stream: true, input_tokens: 4096 },
});
const ratelimit: [string, string][] = [
  ['x-ratelimit-limit-requests', '600'],
  ['x-ratelimit-remaining-requests', '599'],
  ['x-ratelimit-reset-requests', '100ms'],
];

const shapes: [string, ProcessingResponse][] = [
  ['request headers, nothing to change', { requestHeaders: { response: commonResponse(out()) } }],
  [
    'request headers: set, remove, route cache, metadata',
    {
      requestHeaders: {
        response: commonResponse(
          out(
            [
              ['x-lmgate-tenant', 'acme'],
              ['x-lmgate-route', 'llama-\xe9\xff'],
              ['x-empty', ''],
            ],
            ['authorization'],
            true,
          ),
        ),
      },
      dynamicMetadata: metadata,
    },
  ],
  ['request body chunk held', { requestBody: { response: { bodyMutation: { clearBody: true } } } }],
  ['request body passed', { requestBody: {} }],
  [
    'request body rewritten',
    {
      requestBody: {
        response: {
          ...commonResponse(out([['content-length', '17']])),
          bodyMutation: { body: Buffer.from('{"model":"x"}') },
        },
      },
    },
  ],
  [
    'request body, full duplex',
    {
      requestBody: {
        response: { bodyMutation: { streamedResponse: { body: Buffer.from('{"a":1}'), endOfStream: true } } },
      },
    },
  ],
  [
    'request body, full duplex, trailers follow',
    {
      requestBody: { response: { bodyMutation: { streamedResponse: { body: Buffer.alloc(0), endOfStream: false } } } },
    },
  ],
  ['request trailers', { requestTrailers: {} }],
  ['response trailers', { responseTrailers: {} }],
  ['response headers, early', { responseHeaders: {}, modeOverride: { responseBodyMode: BodySendMode.NONE } }],
  [
    'response headers, body wanted',
    {
      responseHeaders: { response: commonResponse(out(ratelimit, ['content-length'])) },
      modeOverride: { responseBodyMode: BodySendMode.STREAMED, responseTrailerMode: HeaderSendMode.SEND },
      dynamicMetadata: metadata,
    },
  ],
  ['response body chunk', { responseBody: { response: { bodyMutation: { body: Buffer.from('data: {}\n\n') } } } }],
  ['response body, large', { responseBody: { response: { bodyMutation: { body: Buffer.alloc(200_000, 0x61) } } } }],
  ['response body held', { responseBody: { response: { bodyMutation: { clearBody: true } } } }],
  ['message deadline', { overrideMessageTimeout: { seconds: 4, nanos: 500_000_000 } }],
  ['message deadline under a second', { overrideMessageTimeout: { seconds: 0, nanos: 250_000_000 } }],
  ['trailers with headers', { requestTrailers: { headerMutation: headerMutation([['x-t', '1']], ['x-u']) } }],
];
for (const phase of ['requestHeaders', 'responseHeaders', 'requestBody', 'responseBody'] as const)
  shapes.push([`${phase} pass-through`, { [phase]: {} }]);
for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
  shapes.push([`refusal ${code}`, { immediateResponse: immediateResponseFor(refuse(code, 'Refused.')) }]);
}
shapes.push(
  [
    'refusal with a rule and rate-limit headers, and metadata',
    {
      immediateResponse: immediateResponseFor(
        refuse('rate_limit_exceeded', 'Slow down.', {
          ruleId: 'team-rpm',
          headers: [...ratelimit, ['retry-after', '1']],
        }),
      ),
      dynamicMetadata: metadata,
    },
  ],
  ['refusal without headers or body', { immediateResponse: { status: { code: 500 } } }],
);

describe('response codec: the gate’s answers', () => {
  for (const [name, m] of shapes) it(`${name}: protobufjs' bytes`, () => expectProtobufjsBytes(m));

  // The message types the encoder knows, by where they sit; a key outside FIELDS[type] would be
  // dropped on the wire (protobufjs would write it if the schema has it: the bytes test says so).
  const CHILDREN: Record<string, Record<string, string | undefined>> = {
    ProcessingResponse: {
      requestHeaders: 'PhaseResponse',
      responseHeaders: 'PhaseResponse',
      requestBody: 'PhaseResponse',
      responseBody: 'PhaseResponse',
      requestTrailers: 'TrailersResponse',
      responseTrailers: 'TrailersResponse',
      immediateResponse: 'ImmediateResponse',
      modeOverride: 'ProcessingMode',
      overrideMessageTimeout: 'Duration',
    },
    PhaseResponse: { response: 'CommonResponse' },
    TrailersResponse: { headerMutation: 'HeaderMutation' },
    CommonResponse: { headerMutation: 'HeaderMutation', bodyMutation: 'BodyMutation' },
    HeaderMutation: { setHeaders: 'HeaderValueOption' },
    HeaderValueOption: { header: 'HeaderValue' },
    ImmediateResponse: { status: 'HttpStatus', headers: 'HeaderMutation' },
  };
  function unknownKeys(type: keyof typeof FIELDS, v: object, path: string, found: string[]): string[] {
    for (const [key, child] of Object.entries(v)) {
      if (child === undefined) continue;
      if (!(key in FIELDS[type])) found.push(`${path}.${key}`);
      const childType = CHILDREN[type]?.[key] as keyof typeof FIELDS | undefined;
      if (childType === undefined) continue;
      for (const c of Array.isArray(child) ? child : [child]) unknownKeys(childType, c, `${path}.${key}`, found);
    }
    return found;
  }

  it('every key the builders set is a field the encoder writes', () => {
    for (const [name, m] of shapes) expect(unknownKeys('ProcessingResponse', m, name, [])).toEqual([]);
    // and the check does see one
    const withAppend = {
      requestHeaders: {
        response: {
          headerMutation: { setHeaders: [{ header: { key: 'a', rawValue: Buffer.from('b') }, appendAction: 2 }] },
        },
      },
    };
    expect(unknownKeys('ProcessingResponse', withAppend, 'm', [])).toEqual([
      'm.requestHeaders.response.headerMutation.setHeaders.appendAction',
    ]);
    expect(encodeProcessingResponse(withAppend)).not.toEqual(reference(withAppend));
  });

  it('leaves the caller’s message as it was', () => {
    const m: ProcessingResponse = {
      responseHeaders: { response: commonResponse(out(ratelimit)) },
      dynamicMetadata: metadata,
    };
    const before = reference(m);
    encodeProcessingResponse(m);
    expect(reference(m).equals(before)).toBe(true);
  });
});

// ---- generated messages ----

/** mulberry32: a seeded generator, so a failure reproduces. */
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
  const chance = (p: number) => r() < p;
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

  const KEYS = [
    ':status',
    'content-type',
    'x-ratelimit-remaining-tokens',
    'set-cookie',
    '',
    'x-ümlaut',
    'x-☃',
    'k'.repeat(300),
  ];
  function bytes(): Buffer {
    const size = chance(0.02) ? 128 * 1024 + int(70_000) : chance(0.2) ? 0 : chance(0.1) ? 100 + int(20_000) : int(40);
    const b = Buffer.alloc(size, int(256));
    // latin1 bytes anywhere in 0..255, some above 0x7f
    for (let i = 0; i < Math.min(size, 64); i++) b[int(size)] = int(256);
    return b;
  }
  function text(): string {
    return pick(['', 'ok', 'lm_gate_rate_limited', 'détails ☃ 🦄', 'x'.repeat(int(300)), 'é'.repeat(int(70_000))]);
  }
  function mutation(): HeaderMutation {
    const m: HeaderMutation = {};
    if (chance(0.8))
      m.setHeaders = Array.from({ length: int(25) }, () => ({ header: { key: pick(KEYS), rawValue: bytes() } }));
    if (chance(0.5)) m.removeHeaders = Array.from({ length: int(5) }, () => pick(KEYS));
    return m;
  }
  const enumValue = () => (chance(0.05) ? -1 - int(3) : int(6));
  function common() {
    const c: NonNullable<NonNullable<ProcessingResponse['requestHeaders']>['response']> = {};
    if (chance(0.7)) c.headerMutation = mutation();
    if (chance(0.5)) {
      c.bodyMutation = {};
      if (chance(0.6)) c.bodyMutation.body = bytes();
      if (chance(0.5)) c.bodyMutation.clearBody = chance(0.5);
      if (chance(0.3)) {
        c.bodyMutation.streamedResponse = {};
        if (chance(0.7)) c.bodyMutation.streamedResponse.body = bytes();
        if (chance(0.7)) c.bodyMutation.streamedResponse.endOfStream = chance(0.5);
      }
    }
    if (chance(0.4)) c.clearRouteCache = chance(0.5);
    return c;
  }
  const json = (depth: number): unknown => {
    switch (int(depth > 3 ? 4 : 6)) {
      case 0:
        return null;
      case 1:
        return pick([0, -1, 1.5, 2 ** 53, Number.NaN, -0]);
      case 2:
        return text();
      case 3:
        return chance(0.5);
      case 4:
        return Array.from({ length: int(4) }, () => json(depth + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: int(5) }, (_, i) => [`k${i}${pick(['', 'é', '☃'])}`, json(depth + 1)]),
        );
    }
  };

  return (): ProcessingResponse => {
    const m: ProcessingResponse = {};
    // The oneof is usually one member; protobufjs writes all that are set, and so do we.
    const members = chance(0.9) ? 1 : int(4);
    for (let i = 0; i < members; i++) {
      switch (int(7)) {
        case 0:
          m.requestHeaders = chance(0.8) ? { response: common() } : {};
          break;
        case 1:
          m.responseHeaders = chance(0.8) ? { response: common() } : {};
          break;
        case 2:
          m.requestBody = chance(0.8) ? { response: common() } : {};
          break;
        case 3:
          m.responseBody = chance(0.8) ? { response: common() } : {};
          break;
        case 4:
          m.requestTrailers = chance(0.5) ? { headerMutation: mutation() } : {};
          break;
        case 5:
          m.responseTrailers = chance(0.5) ? { headerMutation: mutation() } : {};
          break;
        default: {
          const ir: NonNullable<ProcessingResponse['immediateResponse']> = {
            status: { code: pick([200, 401, 403, 413, 429, 503, 0, 599, -1]) },
          };
          if (chance(0.8)) ir.headers = mutation();
          if (chance(0.8)) ir.body = bytes();
          if (chance(0.8)) ir.details = text();
          m.immediateResponse = ir;
        }
      }
    }
    if (chance(0.5)) m.dynamicMetadata = toStruct({ lm_gate: json(0), other: json(2) });
    if (chance(0.3)) {
      m.modeOverride = {};
      if (chance(0.7)) m.modeOverride.responseBodyMode = enumValue();
      if (chance(0.5)) m.modeOverride.responseTrailerMode = enumValue();
    }
    if (chance(0.2))
      m.overrideMessageTimeout = {
        seconds: pick([0, 1, 30, 2 ** 31 + 7, 2 ** 32 + 5, 2 ** 40 + 3, 2 ** 52, -1, -(2 ** 33)]),
        nanos: pick([0, 1, 999_999_999, -5]),
      };
    if (chance(0.05)) m.dynamicMetadata = undefined; // explicitly undefined: not written
    return m;
  };
}

describe('response codec: generated messages', () => {
  it('2,000 generated answers: protobufjs’ bytes', () => {
    const next = generator(0x1ec0de);
    let large = 0;
    for (let i = 0; i < 2000; i++) {
      const m = next();
      const ours = encodeProcessingResponse(m);
      if (ours.length > 128 * 1024) large++;
      const want = reference(m);
      if (!ours.equals(want)) throw new Error(`message ${i} differs: ${ours.length} vs ${want.length} bytes`);
    }
    expect(large).toBeGreaterThan(10); // some needed 3-byte lengths
  });

  it('an empty message is zero bytes', () => expect(encodeProcessingResponse({}).length).toBe(0));
});

describe('response codec: after a very large answer', () => {
  it('encodes the next answers the same (the size list it let go of is rebuilt)', () => {
    const many = headerMutation(
      Array.from({ length: 5000 }, (_, i) => [`x-h${i}`, `v${i}`] as [string, string]),
      [],
    );
    const big: ProcessingResponse = { responseHeaders: { response: { headerMutation: many } } };
    expectProtobufjsBytes(big);
    for (const [, m] of shapes.slice(0, 5)) expectProtobufjsBytes(m);
  });
});
