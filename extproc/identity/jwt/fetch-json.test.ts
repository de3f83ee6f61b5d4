// The bounded fetch against a real HTTP server on loopback: what it refuses and how long it waits.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchJson, maxAge } from './fetch-json.ts';

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    switch (req.url) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
        return res.end('{"keys":[]}');
      case '/redirect':
        res.writeHead(302, { location: '/ok' });
        return res.end();
      case '/big-declared':
        res.writeHead(200, { 'content-length': '5000' });
        return res.end('x'.repeat(5000));
      case '/big-chunked':
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 10; i++) res.write(`${' '.repeat(1000)}`);
        return res.end('{}');
      case '/slow':
        return setTimeout(() => res.end('{}'), 2000).unref();
      case '/not-json':
        return res.end('<html>');
      default:
        res.writeHead(404);
        return res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const opts = { timeoutMs: 300, maxBytes: 4096 };

describe('fetchJson', () => {
  it('returns the JSON and its max-age', async () => {
    expect(await fetchJson(`${base}/ok`, opts)).toEqual({ json: { keys: [] }, maxAgeSeconds: 600 });
  });

  const refusals: [string, string, RegExp][] = [
    ['a redirect is never followed', '/redirect', /request failed/],
    ['a declared length over the cap', '/big-declared', /over 4096/],
    ['a chunked body over the cap, counted as it arrives', '/big-chunked', /over 4096/],
    ['a status other than 200', '/missing', /HTTP 404/],
    ['a body that is not JSON', '/not-json', /not JSON/],
    ['a server slower than the timeout', '/slow', /timed out after 300 ms/],
  ];
  for (const [name, path, want] of refusals)
    it(`refuses ${name}`, async () => {
      const started = Date.now();
      await expect(fetchJson(`${base}${path}`, opts)).rejects.toThrow(want);
      expect(Date.now() - started).toBeLessThan(1500);
    });

  it('refuses a connection that is refused', async () => {
    await expect(fetchJson('http://127.0.0.1:1/keys', opts)).rejects.toThrow(/request failed/);
  });
});

describe('maxAge', () => {
  const table: [string | null, number | undefined][] = [
    [null, undefined],
    ['max-age=300', 300],
    ['public, max-age=86400, must-revalidate', 86400],
    ['no-store', undefined],
    ['max-age=300, no-cache', undefined],
    ['max-age=-1', undefined],
    ['max-age=abc', undefined],
  ];
  for (const [header, want] of table) it(`${header} → ${want}`, () => expect(maxAge(header)).toBe(want));
});
