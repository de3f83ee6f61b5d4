// Clients that put exact bytes on the wire, for the tests no well-behaved library can write:
//
// - rawRequest: HTTP/1.1 over a plain socket (node:net). The request is a list of parts written
//   in order: bytes, pauses, or a (large) body generator written with backpressure. Anything
//   goes: malformed chunking, no Host, a `#` in the path, upgrade headers, an upload that stalls
//   after part of its body. The answer is parsed (status, headers, body by its framing,
//   trailers) and the writing stops as soon as it is complete, since Envoy often answers
//   before the upload ends (413, 400).
// - h2Request: HTTP/2 cleartext with prior knowledge (node:http2), a body written in chunks,
//   and request trailers (waitForTrailers + sendTrailers), which Envoy forwards to ext_proc.
import { constants as h2, connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';

const CRLF = '\r\n';

/** A part of a raw request: bytes, a pause, or a body source written with backpressure. */
export type RawPart = string | Buffer | { delayMs: number } | { source: Iterable<Buffer> | AsyncIterable<Buffer> };

export interface RawResponse {
  status: number;
  reason: string;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The headers in wire order, names as sent. */
  rawHeaders: [string, string][];
  /** The body, de-chunked when it was chunked. */
  body: Buffer;
  /** Trailers of a chunked body, names lower-cased. */
  trailers: Record<string, string>;
  framing: 'content-length' | 'chunked' | 'close' | 'none';
  /** The body ended as its framing says (all content-length bytes, the last chunk, or the
   * close of a close-delimited body). False when the connection closed early. */
  complete: boolean;
  /** Interim (1xx) responses received before this one. */
  interim: number[];
  /** Every byte the server sent on the connection. */
  raw: Buffer;
  /** The server closed the connection (before or right after the answer was complete). */
  closedByServer: boolean;
  /** Bytes of the request actually handed to the socket before the answer was complete. */
  bytesWritten: number;
}

export interface RawOptions {
  host?: string;
  port: number;
  /** Give up (reject) when no complete answer came within this time. Default 10 s. */
  timeoutMs?: number;
  /** Expect no body (the request was HEAD). */
  head?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A request head: request line, headers in the order given, blank line. No header is added. */
export function requestHead(
  method: string,
  target: string,
  headers: Record<string, string | number> | [string, string | number][],
  version = 'HTTP/1.1',
): string {
  const list = Array.isArray(headers) ? headers : Object.entries(headers);
  return `${method} ${target} ${version}${CRLF}${list.map(([k, v]) => `${k}: ${v}${CRLF}`).join('')}${CRLF}`;
}

/** One chunk of a chunked body (an empty one is NOT the last chunk: use lastChunk). */
export function chunk(data: string | Buffer): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  if (b.length === 0) throw new Error('chunk(): an empty chunk ends the body; use lastChunk()');
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}${CRLF}`), b, Buffer.from(CRLF)]);
}

/** The last chunk, with optional trailers. */
export function lastChunk(trailers: Record<string, string> = {}): string {
  return `0${CRLF}${Object.entries(trailers)
    .map(([k, v]) => `${k}: ${v}${CRLF}`)
    .join('')}${CRLF}`;
}

/** `total` bytes of `fill` as chunked-encoding pieces of `chunkSize` (the last chunk not included). */
export function* chunkedBody(total: number, chunkSize = 64 * 1024, fill = 0x61): Generator<Buffer> {
  const full = chunk(Buffer.alloc(chunkSize, fill));
  for (let sent = 0; sent < total; sent += chunkSize) {
    yield total - sent >= chunkSize ? full : chunk(Buffer.alloc(total - sent, fill));
  }
}

/** `total` bytes of `fill`, in pieces of `pieceSize`, for a body with a content-length. */
export function* plainBody(total: number, pieceSize = 64 * 1024, fill = 0x61): Generator<Buffer> {
  const full = Buffer.alloc(pieceSize, fill);
  for (let sent = 0; sent < total; sent += pieceSize) {
    yield total - sent >= pieceSize ? full : Buffer.alloc(total - sent, fill);
  }
}

interface Parsed {
  response: RawResponse | undefined;
  /** The answer is complete as framed. */
  done: boolean;
}

function parseHeaderBlock(text: string): { name: string; value: string }[] {
  return text
    .split(CRLF)
    .filter((l) => l.length > 0)
    .map((l) => {
      const i = l.indexOf(':');
      return { name: l.slice(0, i).trim(), value: l.slice(i + 1).trim() };
    });
}

/** Parses what arrived so far. `closed`: the server closed the connection. */
function parse(raw: Buffer, closed: boolean, head: boolean, bytesWritten: number): Parsed {
  let pos = 0;
  const interim: number[] = [];
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', pos);
    if (end === -1) return { response: undefined, done: false };
    const lines = raw.toString('latin1', pos, end).split(CRLF);
    const m = /^HTTP\/\d(?:\.\d)? (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
    if (!m) throw new Error(`raw HTTP: not a status line: ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const rawHeaders = parseHeaderBlock(lines.slice(1).join(CRLF)).map(({ name, value }) => [name, value]) as [
      string,
      string,
    ][];
    pos = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(status);
      continue;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of rawHeaders) {
      const n = k.toLowerCase();
      headers[n] = headers[n] === undefined ? v : `${headers[n]}, ${v}`;
    }
    const res: RawResponse = {
      status,
      reason: m[2] ?? '',
      headers,
      rawHeaders,
      body: Buffer.alloc(0),
      trailers: {},
      framing: 'none',
      complete: false,
      interim,
      raw,
      closedByServer: closed,
      bytesWritten,
    };
    const te = headers['transfer-encoding']?.toLowerCase();
    const cl = headers['content-length'];
    if (head || status === 204 || status === 304 || status === 101) {
      res.complete = true;
      return { response: res, done: true };
    }
    if (te?.includes('chunked')) {
      res.framing = 'chunked';
      const parts: Buffer[] = [];
      let p = pos;
      for (;;) {
        const lineEnd = raw.indexOf(CRLF, p);
        if (lineEnd === -1) break;
        const size = Number.parseInt(raw.toString('latin1', p, lineEnd).split(';')[0]!.trim(), 16);
        if (!Number.isFinite(size)) throw new Error('raw HTTP: bad chunk size in the response');
        if (size === 0) {
          const tEnd = raw.indexOf('\r\n\r\n', lineEnd);
          const blank = raw.indexOf(CRLF, lineEnd + 2) === lineEnd + 2;
          if (blank) {
            res.complete = true;
          } else if (tEnd !== -1) {
            for (const { name, value } of parseHeaderBlock(raw.toString('latin1', lineEnd + 2, tEnd)))
              res.trailers[name.toLowerCase()] = value;
            res.complete = true;
          }
          break;
        }
        if (raw.length < lineEnd + 2 + size + 2) {
          parts.push(raw.subarray(lineEnd + 2, Math.min(raw.length, lineEnd + 2 + size)));
          break;
        }
        parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
      }
      res.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      res.framing = 'content-length';
      const n = Number(cl);
      res.body = raw.subarray(pos, pos + n);
      res.complete = raw.length - pos >= n;
    } else {
      res.framing = 'close';
      res.body = raw.subarray(pos);
      res.complete = closed;
    }
    return { response: res, done: res.complete || closed };
  }
}

/**
 * Writes the parts in order on a fresh connection and resolves with the parsed answer: when it
 * is complete as framed, or when the server closes the connection (then `complete` tells
 * whether the body was whole). Writing stops once the answer is complete or the socket fails.
 * Rejects when nothing complete arrived within timeoutMs (the message says what did).
 */
export function rawRequest(parts: RawPart[], opts: RawOptions): Promise<RawResponse> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise<RawResponse>((resolve, reject) => {
    const socket: Socket = connect({ host: opts.host ?? '127.0.0.1', port: opts.port });
    const received: Buffer[] = [];
    let raw: Buffer = Buffer.alloc(0);
    let settled = false;
    let closed = false;
    let bytesWritten = 0;
    let writeError: Error | undefined;

    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    let total = 0;
    // Once the head is parsed: what completes the body, so big answers are not re-parsed on
    // every read.
    let framing: RawResponse['framing'] | undefined;
    let needed = 0;
    const check = (last?: Buffer) => {
      if (settled) return;
      if (!closed && last !== undefined) {
        if (framing === 'content-length' && total < needed) return;
        if (framing === 'close') return;
        if (
          framing === 'chunked' &&
          !(last.length >= 2 && last[last.length - 2] === 13 && last[last.length - 1] === 10)
        )
          return;
      }
      raw = received.length === 1 ? received[0]! : Buffer.concat(received);
      received.length = 0;
      received.push(raw);
      let parsed: Parsed;
      try {
        parsed = parse(raw, closed, opts.head === true, bytesWritten);
      } catch (err) {
        settle(() => reject(err));
        return;
      }
      if (parsed.response && framing === undefined) {
        framing = parsed.response.framing;
        if (framing === 'content-length')
          needed = raw.length - parsed.response.body.length + Number(parsed.response.headers['content-length']);
      }
      if (parsed.done && parsed.response) {
        const r = parsed.response;
        settle(() => resolve(r));
      } else if (closed) {
        const got = raw.length === 0 ? 'nothing' : JSON.stringify(raw.toString('latin1', 0, 300));
        settle(() =>
          reject(
            new Error(
              `raw HTTP: connection closed without a complete answer (got ${got}${writeError ? `; write error: ${writeError.message}` : ''})`,
            ),
          ),
        );
      }
    };
    const timer = setTimeout(() => {
      const got = raw.length === 0 ? 'nothing' : JSON.stringify(raw.toString('latin1', 0, 300));
      settle(() =>
        reject(new Error(`raw HTTP: no complete answer within ${timeoutMs} ms (got ${got}, wrote ${bytesWritten} B)`)),
      );
    }, timeoutMs);

    socket.on('data', (d: Buffer) => {
      received.push(d);
      total += d.length;
      check(d);
    });
    socket.on('end', () => {
      closed = true;
      check();
    });
    socket.on('close', () => {
      closed = true;
      check();
    });
    socket.on('error', (err) => {
      // A reset while we still write (Envoy answered early and closed): the answer may already
      // be in; 'close' follows and decides.
      writeError ??= err;
    });

    const writable = () => !settled && !closed && !socket.destroyed && writeError === undefined;
    const write = (b: Buffer) =>
      new Promise<void>((done) => {
        if (!writable()) return done();
        bytesWritten += b.length;
        if (socket.write(b)) return done();
        const go = () => {
          socket.off('drain', go);
          socket.off('close', go);
          done();
        };
        socket.on('drain', go);
        socket.on('close', go);
      });

    socket.once('connect', async () => {
      for (const part of parts) {
        if (!writable()) return;
        if (typeof part === 'string') await write(Buffer.from(part, 'latin1'));
        else if (Buffer.isBuffer(part)) await write(part);
        else if ('delayMs' in part) await sleep(part.delayMs);
        else
          for await (const b of part.source) {
            if (!writable()) return;
            await write(b);
          }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 cleartext (prior knowledge)

export interface H2Options {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** Body pieces written in order; `{ delayMs }` pauses between them. */
  body?: (string | Buffer | { delayMs: number })[];
  /** Request trailers, sent after the body (the stream ends with them). */
  trailers?: Record<string, string>;
  timeoutMs?: number;
}

export interface H2Response {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  trailers: Record<string, string>;
  /** The response stream ended normally (not reset). */
  complete: boolean;
  /** The RST_STREAM code when the server reset the stream, else undefined. */
  resetCode: number | undefined;
}

/** One request over a new h2c connection to `origin` (http://host:port), closed afterwards. */
export function h2Request(origin: string, opts: H2Options): Promise<H2Response> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise<H2Response>((resolve, reject) => {
    const session = h2connect(origin);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      fn();
    };
    const timer = setTimeout(
      () => settle(() => reject(new Error(`h2: no complete answer within ${timeoutMs} ms`))),
      timeoutMs,
    );
    session.on('error', (err) => settle(() => reject(err)));

    const hasBody = (opts.body?.length ?? 0) > 0 || opts.trailers !== undefined;
    const stream = session.request(
      {
        [h2.HTTP2_HEADER_METHOD]: opts.method ?? 'POST',
        [h2.HTTP2_HEADER_PATH]: opts.path,
        ...opts.headers,
      },
      { endStream: !hasBody, waitForTrailers: opts.trailers !== undefined },
    );
    if (opts.trailers) {
      const t = opts.trailers;
      stream.on('wantTrailers', () => stream.sendTrailers(t));
    }

    let status = 0;
    const headers: Record<string, string> = {};
    const trailers: Record<string, string> = {};
    const parts: Buffer[] = [];
    const flat = (h: Record<string, unknown>, into: Record<string, string>) => {
      for (const [k, v] of Object.entries(h)) {
        if (k === ':status') status = Number(v);
        else into[k] = Array.isArray(v) ? v.join(', ') : String(v);
      }
    };
    stream.on('response', (h) => flat(h, headers));
    stream.on('trailers', (h) => flat(h, trailers));
    stream.on('data', (d: Buffer) => parts.push(d));
    let ended = false;
    stream.on('end', () => {
      ended = true;
    });
    stream.on('error', () => {}); // a reset: 'close' reports it
    stream.on('close', () => {
      const resetCode =
        stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR ? stream.rstCode : undefined;
      const body = Buffer.concat(parts);
      if (status === 0)
        settle(() => reject(new Error(`h2: stream closed without response headers (rst code ${stream.rstCode})`)));
      else
        settle(() =>
          resolve({ status, headers, body, trailers, complete: ended && resetCode === undefined, resetCode }),
        );
    });

    void (async () => {
      if (!hasBody) return;
      for (const part of opts.body ?? []) {
        if (settled || stream.destroyed) return;
        if (typeof part === 'object' && !Buffer.isBuffer(part)) await sleep(part.delayMs);
        else
          await new Promise<void>((done) => {
            if (stream.write(part)) done();
            else stream.once('drain', done);
          });
      }
      if (!settled && !stream.destroyed) stream.end();
    })();
  });
}
