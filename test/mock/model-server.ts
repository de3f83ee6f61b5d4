// A mock model server: the one thing the tests and the bench fake. It speaks the wire formats of
// OpenAI's API (as vLLM and most servers serve it) and Ollama's, streams SSE or NDJSON with
// controllable timing, and records what reached it so tests can assert what went upstream.
//
//   node test/mock/model-server.ts --port 8000 [--latency-ms N] [--chunks N] [--chunk-delay-ms N]
//
// Per-request overrides by header: x-mock-latency-ms, x-mock-chunks, x-mock-chunk-delay-ms,
// x-mock-status (answer that status with an OpenAI error), x-mock-usage (auto|always|never),
// x-mock-split: 1 (write each event in two TCP writes, split inside a multi-byte character),
// x-mock-content (the reply text, percent-encoded so any Unicode fits a header, spread over the
// chunks).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

export interface MockOptions {
  port?: number;
  host?: string;
  latencyMs?: number;
  chunks?: number;
  chunkDelayMs?: number;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: unknown;
}

export interface MockModel {
  url: string;
  port: number;
  received: ReceivedRequest[];
  reset(): void;
  close(): Promise<void>;
}

const WORDS = ['Hello', ' from', ' the', ' mock', ' model', ' server! '];
const MODELS = ['mock-small', 'mock-large'];

interface Plan {
  latencyMs: number;
  chunks: number;
  chunkDelayMs: number;
  usage: 'auto' | 'always' | 'never';
  split: boolean;
  pieces: string[];
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function plan(req: IncomingMessage, opts: Required<Omit<MockOptions, 'port' | 'host'>>): Plan {
  const num = (name: string, dflt: number) => {
    const v = header(req, name);
    const n = v === undefined ? Number.NaN : Number(v);
    return Number.isFinite(n) && n >= 0 ? n : dflt;
  };
  const chunks = Math.max(1, Math.floor(num('x-mock-chunks', opts.chunks)));
  const content = header(req, 'x-mock-content');
  const usage = header(req, 'x-mock-usage');
  return {
    latencyMs: num('x-mock-latency-ms', opts.latencyMs),
    chunks,
    chunkDelayMs: num('x-mock-chunk-delay-ms', opts.chunkDelayMs),
    usage: usage === 'always' || usage === 'never' ? usage : 'auto',
    split: header(req, 'x-mock-split') === '1',
    pieces:
      content === undefined
        ? Array.from({ length: chunks }, (_, i) => WORDS[i % WORDS.length]!)
        : spread(safeDecode(content), chunks),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Text spread over n pieces by code point, as evenly as possible. */
function spread(text: string, n: number): string[] {
  const cps = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(cps.slice(Math.floor((i * cps.length) / n), Math.floor(((i + 1) * cps.length) / n)).join(''));
  return out;
}

/** Whitespace-separated words across the prompt material: the mock's deterministic "tokens". */
function promptTokens(json: Record<string, unknown>): number {
  const texts: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') texts.push(v);
    else if (Array.isArray(v))
      for (const x of v)
        add(
          typeof x === 'object' && x !== null
            ? ((x as { content?: unknown; text?: unknown }).content ?? (x as { text?: unknown }).text)
            : x,
        );
  };
  add(json.messages);
  add(json.prompt);
  add(json.input);
  const n = texts.join(' ').split(/\s+/).filter(Boolean).length;
  return Math.max(1, n);
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function openAiError(res: ServerResponse, status: number, message: string, type = 'invalid_request_error'): void {
  sendJson(res, status, { error: { message, type, code: null, param: null } });
}

/** Writes one event; with split, in two writes cut inside a multi-byte character if it has one. */
async function writeEvent(res: ServerResponse, text: string, split: boolean): Promise<void> {
  const buf = Buffer.from(text);
  if (!split || buf.length < 2) {
    res.write(buf);
    return;
  }
  let at = buf.findIndex((b) => b >= 0xc0); // a lead byte: cut right after it
  at = at === -1 ? Math.floor(buf.length / 2) : at + 1;
  res.write(buf.subarray(0, at));
  await sleep(2);
  if (!res.destroyed) res.write(buf.subarray(at));
}

export function startMockModel(opts: MockOptions = {}): Promise<MockModel> {
  const defaults = { latencyMs: opts.latencyMs ?? 0, chunks: opts.chunks ?? 5, chunkDelayMs: opts.chunkDelayMs ?? 0 };
  const received: ReceivedRequest[] = [];
  let seq = 0;

  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      let json: unknown;
      if (body.length > 0) {
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined;
        }
      }
      const path = (req.url ?? '/').split('?')[0]!;
      received.push({ method: req.method ?? 'GET', path, headers: { ...req.headers }, body, json });
      handle(req, res, path, json, plan(req, defaults), ++seq).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 65_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      resolve({
        url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
        port,
        received,
        reset: () => {
          received.length = 0;
        },
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  json: unknown,
  p: Plan,
  seq: number,
): Promise<void> {
  await sleep(p.latencyMs);
  if (res.destroyed) return;
  const status = Number(header(req, 'x-mock-status'));
  if (Number.isInteger(status) && status >= 400) return openAiError(res, status, 'mock error', 'server_error');

  if (req.method === 'GET' && path === '/v1/models') {
    return sendJson(res, 200, {
      object: 'list',
      data: MODELS.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'lm-gate-mock' })),
    });
  }
  if (req.method === 'GET' && path === '/api/tags') {
    return sendJson(res, 200, {
      models: MODELS.map((name) => ({ name, model: name, size: 1, digest: 'mock', details: {} })),
    });
  }
  if (req.method !== 'POST') return openAiError(res, 404, `no route for ${req.method} ${path}`, 'not_found_error');

  const routes: Record<string, string> = {
    '/v1/chat/completions': 'chat',
    '/v1/completions': 'completions',
    '/v1/embeddings': 'embeddings',
    '/api/chat': 'ollama.chat',
    '/api/generate': 'ollama.generate',
  };
  const route = routes[path];
  if (!route) return openAiError(res, 404, `no route for POST ${path}`, 'not_found_error');
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return openAiError(res, 400, 'body must be a JSON object');
  const body = json as Record<string, unknown>;
  if (typeof body.model !== 'string') return openAiError(res, 400, 'model is required');
  if ((route === 'chat' || route === 'ollama.chat') && !Array.isArray(body.messages))
    return openAiError(res, 400, 'messages must be an array');

  const model = body.model;
  const prompt = promptTokens(body);
  const completion = p.pieces.length;
  const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  const created = 1_700_000_000 + seq;
  const id = `mock-${seq}`;

  if (route === 'embeddings') {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    return sendJson(res, 200, {
      object: 'list',
      data: inputs.map((_, i) => ({
        object: 'embedding',
        index: i,
        embedding: Array.from({ length: 8 }, (_, k) => Math.round(Math.sin(i + k) * 1e4) / 1e4),
      })),
      model,
      ...(p.usage === 'never' ? {} : { usage: { prompt_tokens: prompt, total_tokens: prompt } }),
    });
  }

  if (route.startsWith('ollama.')) {
    const chat = route === 'ollama.chat';
    const counts =
      p.usage === 'never'
        ? {}
        : {
            total_duration: 1_000_000,
            load_duration: 1000,
            prompt_eval_count: prompt,
            prompt_eval_duration: 1000,
            eval_count: completion,
            eval_duration: 1000,
          };
    const piece = (content: string, done: boolean) => ({
      model,
      created_at: new Date(created * 1000).toISOString(),
      ...(chat ? { message: { role: 'assistant', content } } : { response: content }),
      done,
      ...(done ? { done_reason: 'stop', ...counts } : {}),
    });
    if (body.stream === false) return sendJson(res, 200, piece(p.pieces.join(''), true));
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const content of p.pieces) {
      if (res.destroyed) return;
      await writeEvent(res, `${JSON.stringify(piece(content, false))}\n`, p.split);
      await sleep(p.chunkDelayMs);
    }
    if (!res.destroyed) await writeEvent(res, `${JSON.stringify(piece('', true))}\n`, p.split);
    res.end();
    return;
  }

  const chat = route === 'chat';
  const object = chat ? 'chat.completion' : 'text_completion';
  const streamUsage =
    p.usage === 'always' ||
    (p.usage === 'auto' && (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true);

  if (body.stream !== true) {
    const text = p.pieces.join('');
    return sendJson(res, 200, {
      id,
      object,
      created,
      model,
      choices: [
        chat
          ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }
          : { index: 0, text, finish_reason: 'stop', logprobs: null },
      ],
      ...(p.usage === 'never' ? {} : { usage }),
    });
  }

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
  const event = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id, object: chunkObject, created, model, choices, ...(streamUsage ? { usage: null } : {}), ...extra })}\n\n`;
  const choice = (content: string, finish: string | null, role = false) =>
    chat
      ? { index: 0, delta: role ? { role: 'assistant', content } : { content }, finish_reason: finish, logprobs: null }
      : { index: 0, text: content, finish_reason: finish, logprobs: null };

  if (chat) await writeEvent(res, event([choice('', null, true)]), p.split);
  for (let i = 0; i < p.pieces.length; i++) {
    await sleep(p.chunkDelayMs);
    if (res.destroyed) return;
    await writeEvent(res, event([choice(p.pieces[i]!, i === p.pieces.length - 1 ? 'stop' : null)]), p.split);
  }
  if (res.destroyed) return;
  if (streamUsage) await writeEvent(res, event([], { usage }), p.split);
  await writeEvent(res, 'data: [DONE]\n\n', p.split);
  res.end();
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8000' },
      'latency-ms': { type: 'string', default: '0' },
      chunks: { type: 'string', default: '5' },
      'chunk-delay-ms': { type: 'string', default: '0' },
    },
  });
  const mock = await startMockModel({
    port: Number(values.port),
    latencyMs: Number(values['latency-ms']),
    chunks: Number(values.chunks),
    chunkDelayMs: Number(values['chunk-delay-ms']),
  });
  console.log(`mock model listening on ${mock.url}`);
  const stop = () => void mock.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
