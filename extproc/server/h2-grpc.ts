// The gate's gRPC server, on node:http2 directly: the ext_proc bidirectional stream and
// grpc.health.v1 (Check and Watch), which is all Envoy and Kubernetes ask of it.
//
// Why not grpc-js's server: per request it built a Duplex stream, an interceptor chain, a
// metadata object, channelz bookkeeping and a nextTick per message, about a quarter of the
// gate's allocation and a tenth of its CPU on the governed profile (bench:alloc). gRPC over
// HTTP/2 for one known service is small: length-prefixed messages in DATA frames, a status in
// the trailers (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md). What this
// does not do, because nothing that calls the gate needs it: compression (Envoy sends
// uncompressed messages; a compressed one ends the stream with UNIMPLEMENTED), TLS (Envoy
// reaches the gate over loopback, a pod network or a Unix socket), reflection.

import { unlink } from 'node:fs/promises';
import {
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';

/** gRPC status codes the gate sends. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Envoy resets (RST_STREAM) every ext_proc stream once its HTTP request is over, so a busy
 * gate receives one reset per request on each connection. Node's HTTP/2 server treats more
 * than 1000 resets in a burst, then 33 a second, as a rapid-reset attack (CVE-2023-44487) and
 * drops the connection with GOAWAY, failing every request in flight on it: under load Envoy
 * answered 500 every ~1300 requests per connection. The limit is raised well above what one
 * gate process can serve, so it still stops a real flood. */
export const STREAM_RESETS_PER_SECOND = 20_000;
// Request bodies arrive as one message of up to maxRequestBodyBytes. With HTTP/2's default
// 16 KiB frames and 64 KiB windows a 4 MiB body is 256 frames, each a trip through JS, and the
// window refills only as the event loop gets to them; larger frames and windows move the same
// bytes in a few frames.
export const HTTP2_MAX_FRAME_SIZE = 1024 * 1024;
export const HTTP2_STREAM_WINDOW = 8 * 1024 * 1024;
/** The connection's receive window (all streams together); HTTP/2 starts it at 64 KiB. */
export const HTTP2_CONNECTION_WINDOW = 32 * 1024 * 1024;
/** A message at least this long that does not arrive in one read is announced to the listener
 * (onArriving) before it is whole. Envoy starts its message timer when it sends the message;
 * the gate sees it only once every byte is in, and on a connection carrying other requests'
 * 4 MiB bodies that can be most of the 200 ms. A 256 KiB message is four of Node's reads. */
export const ARRIVING_NOTICE_BYTES = 256 * 1024;
/** Envoy multiplexes every request's stream on one connection. */
const MAX_CONCURRENT_STREAMS = 10_000;

const GRPC_CONTENT_TYPE = 'application/grpc';
const RESPONSE_HEADERS = { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-accept-encoding': 'identity' };
const OK_TRAILERS = { 'grpc-status': '0' };

/** One method's message codec. */
export interface Codec<Req, Res> {
  decode(b: Buffer): Req;
  /** The response behind a 5-byte frame header the server fills in (the encoder leaves room,
   * so a message is one buffer and one write). */
  encodeFramed(m: Res): Buffer;
}

/** What a call tells its one user, as methods of one object: the stream state machine is its
 * own listener, so a request pays no closure per event (they would live as long as it does). */
export interface CallListener<Req> {
  /** A message from the client. */
  onMessage(m: Req): void;
  /** A message of `bytes` (at least ARRIVING_NOTICE_BYTES) has begun to arrive and did not
   * come in whole: its onMessage follows once the rest is in, which behind other streams' data
   * on the connection can take a while. Envoy's message timer is already running for it. */
  onArriving?(bytes: number): void;
  /** The client half-closed: it sends nothing more. */
  onEnd?(): void;
  /** The client or the connection went away before the server ended the call. */
  onCancelled?(): void;
  /** The call broke (a message that does not decode, one over the size limit): the server has
   * already ended it with an error status. */
  onError?(err: Error): void;
}

/** A server-side gRPC call, as the gate's stream state machine and the health service use it. */
export interface ServerCall<Req, Res> {
  /** Sets the call's listener (one; a second replaces the first). */
  listen(listener: CallListener<Req>): void;
  write(m: Res): void;
  /** Ends the call with status OK. */
  end(): void;
  /** Ends the call with an error status; the client (Envoy) sees a failed stream. */
  fail(code: number, details: string): void;
}

/** Reads gRPC frames off one HTTP/2 stream and writes them back. */
export class H2Call<Req, Res> implements ServerCall<Req, Res> {
  private readonly stream: ServerHttp2Stream;
  private readonly codec: Codec<Req, Res>;
  private readonly maxMessageBytes: number;
  private listener: CallListener<Req> | undefined;
  /** Bytes of an incomplete frame, until the rest arrives. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The whole frame's length (header included) once its header is in; 0 before. */
  private need = 0;
  private headersSent = false;
  /** The server ended the call (end or fail): nothing more is written or read. */
  private done = false;
  private trailers: Record<string, string> = OK_TRAILERS;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    stream: ServerHttp2Stream,
    codec: Codec<Req, Res>,
    maxMessageBytes: number,
    timeoutMs: number | undefined,
  ) {
    this.stream = stream;
    this.codec = codec;
    this.maxMessageBytes = maxMessageBytes;
    stream.on('data', this.onData);
    stream.on('end', this.onStreamEnd);
    stream.on('close', this.onClose);
    // A reset with an error code also arrives as an 'error' on the stream; 'close' follows and
    // says what matters (the call is over), so the error itself needs no handling.
    stream.on('error', ignore);
    // A closure only for a call with a deadline (a method, not a field, otherwise).
    if (timeoutMs !== undefined) this.deadline = setTimeout(() => this.onDeadline(), timeoutMs);
  }

  listen(listener: CallListener<Req>): void {
    this.listener = listener;
  }

  write(m: Res): void {
    if (this.done || this.stream.destroyed) return;
    const framed = this.codec.encodeFramed(m);
    this.sendHeaders();
    this.stream.write(framed);
  }

  end(): void {
    this.finish(OK_TRAILERS);
  }

  fail(code: number, details: string): void {
    this.finish({ 'grpc-status': String(code), 'grpc-message': percentEncode(details) });
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    this.stream.once('wantTrailers', this.sendTrailers);
  }

  private finish(trailers: Record<string, string>): void {
    if (this.done) return;
    this.done = true;
    this.clearDeadline();
    this.partial = [];
    if (this.stream.destroyed || this.stream.closed) return;
    if (this.headersSent) {
      this.trailers = trailers;
      this.stream.end();
    } else {
      // Trailers-only: the status rides on the one HEADERS frame.
      this.stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
    }
  }

  private readonly sendTrailers = (): void => {
    if (!this.stream.destroyed) this.stream.sendTrailers(this.trailers);
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    let buf = chunk;
    if (this.partialBytes > 0) {
      // A frame split across DATA frames: gather the pieces, copy them once it is whole.
      this.partial.push(chunk);
      this.partialBytes += chunk.length;
      if (this.need === 0) {
        if (this.partialBytes < 5) return;
        // The header arrived in pieces: judge it now, before buffering up to its length.
        const length = Buffer.concat(this.partial, 5).readUInt32BE(1);
        if (length > this.maxMessageBytes) {
          this.broke(
            GrpcStatus.RESOURCE_EXHAUSTED,
            `a message of ${length} bytes, over the limit of ${this.maxMessageBytes}`,
          );
          return;
        }
        this.need = 5 + length;
        if (length >= ARRIVING_NOTICE_BYTES && this.partialBytes < this.need) this.listener?.onArriving?.(length);
      }
      if (this.partialBytes < this.need) return;
      buf = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      this.need = 0;
    }
    let off = 0;
    while (off < buf.length && !this.done) {
      if (buf.length - off < 5) break;
      const compressed = buf[off]!;
      const length = buf.readUInt32BE(off + 1);
      if (compressed !== 0) {
        this.broke(GrpcStatus.UNIMPLEMENTED, 'compressed messages are not supported (grpc-accept-encoding: identity)');
        return;
      }
      if (length > this.maxMessageBytes) {
        this.broke(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `a message of ${length} bytes, over the limit of ${this.maxMessageBytes}`,
        );
        return;
      }
      if (buf.length - off - 5 < length) {
        this.need = 5 + length;
        if (length >= ARRIVING_NOTICE_BYTES) this.listener?.onArriving?.(length);
        break;
      }
      let message: Req;
      try {
        message = this.codec.decode(buf.subarray(off + 5, off + 5 + length));
      } catch (err) {
        this.broke(GrpcStatus.INTERNAL, `a message that does not decode: ${(err as Error).message}`);
        return;
      }
      off += 5 + length;
      this.listener?.onMessage(message);
    }
    if (off < buf.length && !this.done) {
      const rest = buf.subarray(off);
      this.partial = [rest];
      this.partialBytes = rest.length;
    }
  };

  /** The call cannot go on: end it with `code`, and tell the listener why. */
  private broke(code: number, details: string): void {
    this.fail(code, `lm-gate: ${details}`);
    this.listener?.onError?.(new Error(details));
  }

  private readonly onStreamEnd = (): void => {
    // Node ends the readable side of a stream the peer reset, too (the stream is closed by
    // then): that is a cancel, which 'close' reports, not a half-close.
    if (this.done || this.stream.closed) return;
    if (this.partialBytes > 0) {
      this.broke(GrpcStatus.INTERNAL, 'the stream ended inside a message');
      return;
    }
    this.listener?.onEnd?.();
  };

  private readonly onClose = (): void => {
    this.clearDeadline();
    const listener = this.listener;
    this.release();
    if (this.done) return;
    this.done = true;
    listener?.onCancelled?.();
  };

  /** The stream is closed: let go of the listeners and buffers. Node 24 keeps a closed
   * stream's JavaScript objects (and through them this call) alive through scavenges until the
   * next full collection: its WritableState's `onwrite` closure is allocated in the old
   * generation and holds the stream (README Performance; the native side is freed at once).
   * The listeners reach the whole request's state, which each scavenge then copied and
   * promoted to the old space (~12 KiB a request, 0.9 MB per scavenge at 100 req/s): 1.7 ms
   * scavenges and more frequent mark-compacts. */
  private release(): void {
    // The stream's listeners are the call's own methods: removed, the call is not reachable
    // from the stream either. ('error' keeps its module-level no-op: Node may still emit one.)
    this.stream.removeListener('data', this.onData);
    this.stream.removeListener('end', this.onStreamEnd);
    this.stream.removeListener('close', this.onClose);
    this.stream.removeListener('wantTrailers', this.sendTrailers);
    this.listener = undefined;
    this.partial = [];
    this.partialBytes = 0;
  }

  private onDeadline(): void {
    this.deadline = undefined;
    if (this.done) return;
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, 'lm-gate: deadline exceeded');
    this.listener?.onCancelled?.();
  }

  private clearDeadline(): void {
    if (this.deadline !== undefined) {
      clearTimeout(this.deadline);
      this.deadline = undefined;
    }
  }
}

function ignore(): void {}

/** grpc-message: percent-encoded UTF-8, everything outside printable ASCII and '%' itself. */
export function percentEncode(s: string): string {
  if (!/[^\x20-\x24\x26-\x7e]/.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** grpc-timeout: an integer of at most 8 digits and a unit (H M S m u n), as milliseconds. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const ms = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2] as 'H'];
  return Math.max(1, Math.ceil(n * ms));
}

export interface MethodHandler {
  codec: Codec<unknown, unknown>;
  /** Called with each new call of this method. */
  handle(call: ServerCall<unknown, unknown>): void;
}

export interface H2GrpcServerOptions {
  /** Full method path ("/package.Service/Method") to its handler. */
  methods: Record<string, MethodHandler>;
  maxMessageBytes: number;
  /** Each stream that closes with a reset code (RFC 9113), for the reset counter. */
  onStreamReset?(code: number): void;
}

/** The HTTP/2 listener(s) and the method table. */
export class H2GrpcServer {
  private readonly http2: Http2Server[] = [];
  private readonly sessions = new Set<Http2Session>();
  private readonly opts: H2GrpcServerOptions;

  constructor(opts: H2GrpcServerOptions) {
    this.opts = opts;
  }

  /** Listens on "host:port" ("[::]:50051" for IPv6) or "unix:/path"; resolves the TCP port (0
   * for a socket). Errors carry the errno code (EADDRINUSE, EACCES, ...). */
  async listen(address: string): Promise<number> {
    const server = this.createHttp2();
    if (address.startsWith('unix:')) {
      const path = address.slice('unix:'.length);
      await unlink(path).catch(() => {});
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.http2.push(server);
      return 0;
    }
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(colon + 1));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.http2.push(server);
    const bound = server.address();
    return typeof bound === 'object' && bound !== null ? bound.port : 0;
  }

  private createHttp2(): Http2Server {
    const server = createServer({
      settings: {
        maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
        maxFrameSize: HTTP2_MAX_FRAME_SIZE,
        initialWindowSize: HTTP2_STREAM_WINDOW,
        enablePush: false,
      },
      streamResetBurst: STREAM_RESETS_PER_SECOND,
      streamResetRate: STREAM_RESETS_PER_SECOND,
      // Node's default (10 MB per session) refuses new streams while large bodies are in
      // flight on Envoy's one connection; the windows above bound what a session buffers.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    server.on('session', (session) => {
      this.sessions.add(session);
      session.setLocalWindowSize(HTTP2_CONNECTION_WINDOW);
      session.on('error', ignore);
      session.once('close', () => this.sessions.delete(session));
    });
    server.on('stream', this.onStream);
    return server;
  }

  private readonly onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void => {
    const onReset = this.opts.onStreamReset;
    if (onReset !== undefined)
      stream.once('close', () => {
        const code = stream.rstCode ?? 0;
        if (code !== 0) onReset(code);
      });
    const contentType = headers['content-type'];
    if (
      headers[':method'] !== 'POST' ||
      typeof contentType !== 'string' ||
      !contentType.startsWith(GRPC_CONTENT_TYPE)
    ) {
      // Not gRPC (a browser, a health probe over HTTP/1 upgrade): the spec's answer is 415.
      stream.on('error', ignore);
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'] ?? '';
    const method = this.opts.methods[path];
    if (method === undefined) {
      stream.on('error', ignore);
      stream.respond(
        {
          ...RESPONSE_HEADERS,
          'grpc-status': String(GrpcStatus.UNIMPLEMENTED),
          'grpc-message': percentEncode(`unknown method ${path}`),
        },
        { endStream: true },
      );
      return;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      stream.on('error', ignore);
      stream.respond(
        {
          ...RESPONSE_HEADERS,
          'grpc-status': String(GrpcStatus.UNIMPLEMENTED),
          'grpc-message': percentEncode(`grpc-encoding ${String(encoding)} is not supported`),
        },
        { endStream: true },
      );
      return;
    }
    const timeout = headers['grpc-timeout'];
    const call = new H2Call(
      stream,
      method.codec,
      this.opts.maxMessageBytes,
      parseGrpcTimeout(typeof timeout === 'string' ? timeout : undefined),
    );
    method.handle(call);
  };

  /** Stops listening and tells every connection to go away (GOAWAY) once its streams are
   * done; resolves when they are. */
  async close(): Promise<void> {
    const closing = this.http2.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const session of this.sessions) session.close();
    await Promise.all(closing);
  }

  /** Cuts every connection now. */
  destroy(): void {
    for (const s of this.http2) s.close();
    for (const session of this.sessions) session.destroy();
  }
}
