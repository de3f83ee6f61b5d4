// Which codec should the gate use for ext_proc messages? Times, per message, what grpc-js calls
// on every ProcessingRequest/ProcessingResponse:
//   A. @grpc/proto-loader's service definition (protobufjs decode + toObject conversion)
//   B. protobufjs reflection directly, as extproc/server/protocol.ts does (decode to message
//      instances, encode plain objects), with the fields the gate reads actually read.
//
//   sh scripts/dev.sh node bench/proto-codec.ts        (writes bench/results/proto-codec.md)
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
  headerMutation,
  headerValueOf,
  type ProcessingRequest,
  type ProcessingResponse,
  toStruct,
} from '../extproc/server/protocol.ts';

const ROOT = join(import.meta.dirname, '..');
const def = loadSync('envoy/service/ext_proc/v3/external_processor.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [join(ROOT, 'protos'), join(ROOT, 'node_modules', 'protobufjs')],
});
void loadPackageDefinition; // the definition below is exactly what grpc-js would use
const method = def['envoy.service.ext_proc.v3.ExternalProcessor'] as unknown as Record<
  string,
  { requestDeserialize(b: Buffer): any; responseSerialize(v: any): Buffer; responseDeserialize(b: Buffer): any }
>;
const loader = method.Process!;

// ---- realistic messages ----
const hdrs: Record<string, string> = {
  ':method': 'POST',
  ':path': '/v1/chat/completions',
  ':authority': 'llm.internal:10000',
  ':scheme': 'http',
  'content-type': 'application/json',
  'content-length': '16384',
  authorization: `Bearer lmg_${'x'.repeat(43)}`,
  'user-agent': 'OpenAI/JS 7.57.0',
  accept: 'application/json',
  'accept-encoding': 'gzip, deflate',
  'x-request-id': '6f1c1a3e-4a8b-4c3e-9f0e-5d2b7c9a1e42',
  'x-forwarded-proto': 'http',
  'x-envoy-expected-rq-timeout-ms': '600000',
  'x-stainless-lang': 'js',
  'x-stainless-package-version': '7.57.0',
  'x-stainless-os': 'Linux',
  'x-stainless-arch': 'x64',
  'x-stainless-runtime': 'node',
};
const headersMsg = encodeProcessingRequest({
  requestHeaders: {
    headers: { headers: Object.entries(hdrs).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })) },
    endOfStream: false,
  },
});
const chatBody = Buffer.from(
  JSON.stringify({ model: 'llama-3.1-8b', messages: [{ role: 'user', content: 'lorem ipsum '.repeat(1360) }] }).slice(
    0,
    16384,
  ),
);
const bodyMsg = encodeProcessingRequest({ requestBody: { body: chatBody, endOfStream: true } });
const sseChunk = Buffer.from(
  `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llama-3.1-8b', choices: [{ index: 0, delta: { content: ' token' }, finish_reason: null }] })}\n\n`,
);
const chunkMsg = encodeProcessingRequest({ responseBody: { body: sseChunk, endOfStream: false } });

const headersResponse: ProcessingResponse = {
  requestHeaders: {
    response: {
      headerMutation: headerMutation(
        [
          ['x-lmgate-tenant', 'acme'],
          ['x-lmgate-key-id', 'team-a'],
          ['x-lmgate-route', 'default'],
        ],
        ['authorization'],
      ),
    },
  },
  dynamicMetadata: toStruct({
    lm_gate: {
      request_id: hdrs['x-request-id'],
      api: 'openai.chat',
      tenant: 'acme',
      key_id: 'team-a',
      stream: true,
      model_requested: 'llama-3.1-8b',
      status: 200,
      input_tokens: 1234,
    },
  }),
};
const chunkResponse: ProcessingResponse = { responseBody: { response: { bodyMutation: { body: sseChunk } } } };
const emptyChunkResponse: ProcessingResponse = { responseBody: {} };
// proto-loader's own object form of each response: our encoding read back by its deserializer.
const asLoaderObject = (r: ProcessingResponse) => loader.responseDeserialize(encodeProcessingResponse(r));

// ---- what the gate reads of a decoded request ----
function readA(m: any): number {
  let n = 0;
  const h = m.request_headers?.headers?.headers ?? m.response_headers?.headers?.headers;
  // As the gate does: every header value as a string.
  if (h)
    for (const x of h)
      n += x.key.length + (x.raw_value ? x.raw_value.toString('latin1').length : (x.value ?? '').length);
  const b = m.request_body?.body ?? m.response_body?.body;
  if (b) n += b.length;
  return n;
}
function readB(m: ProcessingRequest): number {
  let n = 0;
  const h = m.requestHeaders?.headers?.headers ?? m.responseHeaders?.headers?.headers;
  if (h) for (const x of h) n += x.key.length + headerValueOf(x).length;
  const b = m.requestBody?.body ?? m.responseBody?.body;
  if (b) n += b.length;
  return n;
}

// ---- correctness: both decode to the same values ----
for (const buf of [headersMsg, bodyMsg, chunkMsg]) {
  if (readA(loader.requestDeserialize(buf)) !== readB(decodeProcessingRequest(buf))) throw new Error('codecs disagree');
}
for (const r of [headersResponse, chunkResponse, emptyChunkResponse]) {
  // Same meaning (map entries may be laid out in a different order, so compare decoded).
  const a = JSON.stringify(decodeProcessingResponse(encodeProcessingResponse(r)));
  const b = JSON.stringify(decodeProcessingResponse(loader.responseSerialize(asLoaderObject(r))));
  if (a !== b) throw new Error(`encodings differ:\n${a}\n${b}`);
}

// ---- timing ----
let sink = 0;
function time(fn: () => void, iterations: number): number {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(); // warm-up
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

const rows: [string, number, number][] = [];
const add = (name: string, a: () => void, b: () => void, n: number) => rows.push([name, time(a, n), time(b, n)]);
add(
  'decode request_headers (18 headers)',
  () => (sink += readA(loader.requestDeserialize(headersMsg))),
  () => (sink += readB(decodeProcessingRequest(headersMsg))),
  100_000,
);
add(
  'decode request_body (16 KiB JSON)',
  () => (sink += readA(loader.requestDeserialize(bodyMsg))),
  () => (sink += readB(decodeProcessingRequest(bodyMsg))),
  100_000,
);
add(
  'decode response_body (200 B SSE chunk)',
  () => (sink += readA(loader.requestDeserialize(chunkMsg))),
  () => (sink += readB(decodeProcessingRequest(chunkMsg))),
  200_000,
);
const hLoader = asLoaderObject(headersResponse);
const cLoader = asLoaderObject(chunkResponse);
add(
  'encode headers response (mutation + metadata)',
  () => (sink += loader.responseSerialize(hLoader).length),
  () => (sink += encodeProcessingResponse(headersResponse).length),
  100_000,
);
add(
  'encode response_body with body mutation',
  () => (sink += loader.responseSerialize(cLoader).length),
  () => (sink += encodeProcessingResponse(chunkResponse).length),
  200_000,
);
add(
  'encode empty response_body',
  () => (sink += loader.responseSerialize({ response_body: {} }).length),
  () => (sink += encodeProcessingResponse(emptyChunkResponse).length),
  200_000,
);

const table = [
  '| message | A: @grpc/proto-loader | B: protobufjs direct (ours) | A / B |',
  '|---|---:|---:|---:|',
  ...rows.map(([n, a, b]) => `| ${n} | ${a.toFixed(0)} ns | ${b.toFixed(0)} ns | ${(a / b).toFixed(2)}× |`),
].join('\n');
const decodeGain = rows.slice(0, 3).map(([, a, b]) => a / b);
const encodeGain = rows.slice(3).map(([, a, b]) => a / b);
const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}×`;
const report = `# ext_proc message codec: @grpc/proto-loader vs protobufjs direct

Median of 5 rounds, nanoseconds per message (lower is better), including reading the fields the
gate reads (header keys and values, body length).

${table}

- Decode, A / B: ${range(decodeGain)}. Runs on this shared 2-core VM vary by about ±20%: the
  body and SSE-chunk gains (1.6–2.4× over several runs) repeat, the headers difference
  does not. proto-loader converts every decoded
  message to a plain object (toObject); decoding to message instances skips that, which is
  what matters for bodies and SSE chunks. For request headers both cost about the same (within 10%): the
  time goes to one message object and one Buffer slice per header, which both pay; a
  hand-written HeaderMap reader that decodes raw_value straight to a string is the next step
  if the bench shows headers matter.
- Encode: ${range(encodeGain)} (A / B); both run the same protobufjs encoder, proto-loader adds a
  fromObject conversion per message.
- Both codecs encode the same messages and decode to the same values (checked above).
- Decision: extproc/server/protocol.ts uses protobufjs directly. Either way the codec is a few
  microseconds per message at most, small beside the gRPC round trip itself.

Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.
Command: \`sh scripts/dev.sh node bench/proto-codec.ts\`
`;
writeFileSync(join(ROOT, 'bench', 'results', 'proto-codec.md'), report);
console.log(report);
if (sink === 42) console.log(); // keep the results alive
