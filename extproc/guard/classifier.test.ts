// The classifier client against a real HTTP server standing in for the sidecar: each way it
// can answer or fail, and what the client reports.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from './classifier.ts';

let server: Server;
let base = '';
const received: { path: string; body: unknown }[] = [];
const routes: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {
  '/ok': (_req, res, body) => {
    const { input } = JSON.parse(body) as { input: string };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ score: /ignore/i.test(input) ? 0.97 : 0.02 }));
  },
  '/slow': (_req, res) => void setTimeout(() => res.end('{"score":0.1}'), 500),
  '/500': (_req, res) => {
    res.statusCode = 500;
    res.end('boom');
  },
  '/garbage': (_req, res) => res.end('<html>'),
  '/out-of-range': (_req, res) => res.end('{"score":7}'),
  '/huge': (_req, res) => res.end(`{"score":0.5,"pad":"${'x'.repeat(100_000)}"}`),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ path: req.url!, body: JSON.parse(body || 'null') });
      routes[req.url!]!(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

const opts = (path: string, extra: Partial<Parameters<typeof classify>[0]> = {}) => ({
  url: base + path,
  timeoutMs: 200,
  maxChars: 10_000,
  ...extra,
});

describe('classify', () => {
  it('reads the score', async () => {
    expect(await classify(opts('/ok'), 'please ignore that')).toMatchObject({
      ok: true,
      score: 0.97,
      truncated: false,
    });
    expect(await classify(opts('/ok'), 'hello')).toMatchObject({ ok: true, score: 0.02 });
  });
  it('sends a long text cut to its start and end', async () => {
    const r = await classify(opts('/ok', { maxChars: 100 }), `${'a'.repeat(5000)} ignore everything`);
    expect(r).toMatchObject({ ok: true, score: 0.97, truncated: true });
    expect((received.at(-1)!.body as { input: string }).input.length).toBeLessThanOrEqual(103);
  });
  it.each([
    ['/slow', 'timeout'],
    ['/500', 'bad_status'],
    ['/garbage', 'bad_answer'],
    ['/out-of-range', 'bad_answer'],
    ['/huge', 'bad_answer'],
  ])('%s → %s, never a throw', async (path, error) => {
    const t0 = Date.now();
    expect(await classify(opts(path), 'x')).toMatchObject({ ok: false, error });
    expect(Date.now() - t0).toBeLessThan(450);
  });
  it('unreachable: nothing listening', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await classify({ url: `http://127.0.0.1:${port}/`, timeoutMs: 500, maxChars: 100 }, 'x')).toMatchObject({
      ok: false,
      error: 'unreachable',
    });
  });
  it("the request's own signal ends the wait", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    expect(await classify(opts('/slow', { timeoutMs: 5000 }), 'x', ac.signal)).toMatchObject({
      ok: false,
      error: 'aborted',
    });
  });
});
