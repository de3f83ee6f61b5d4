// The gate's own gRPC server (extproc/server/h2-grpc.ts) over real HTTP/2 connections: how
// messages are framed when DATA frames split or join them, and the status a client gets for
// what the server does not take. Envoy's side of the same protocol is covered end to end by the
// e2e suites; these are the edges a well-behaved Envoy rarely produces.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  createServer,
  type ServerHttp2Stream,
} from 'node:http2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ARRIVING_NOTICE_BYTES,
  type Codec,
  GrpcStatus,
  H2Call,
  H2GrpcServer,
  parseGrpcTimeout,
  percentEncode,
  type ServerCall,
} from '../../extproc/server/h2-grpc.ts';
import { grpcFrame, grpcReader } from '../harness/grpc-frame.ts';

/** Messages are UTF-8 text; the echo method answers each with its upper case, and "end" ends the
 * call, "fail" fails it. */
const text: Codec<string, string> = {
  decode: (b) => {
    const s = b.toString('utf8');
    if (s === 'undecodable') throw new Error('not text the method takes');
    return s;
  },
  encodeFramed: (m) => grpcFrame(Buffer.from(m)),
};

interface Seen {
  messages: string[];
  events: string[];
}
const calls: Seen[] = [];

let server: H2GrpcServer;
let port: number;
let session: ClientHttp2Session;
beforeAll(async () => {
  server = new H2GrpcServer({
    methods: {
      '/test.Echo/Chat': {
        codec: text as Codec<unknown, unknown>,
        handle: (c) => {
          const call = c as ServerCall<string, string>;
          const seen: Seen = { messages: [], events: [] };
          calls.push(seen);
          call.listen({
            onMessage: (m) => {
              seen.messages.push(m);
              if (m === 'end') call.end();
              else if (m === 'fail') call.fail(GrpcStatus.FAILED_PRECONDITION, 'asked to fail: 100% sure, ünïcode');
              else call.write(m.toUpperCase());
            },
            onEnd: () => {
              seen.events.push('end');
              call.end();
            },
            onCancelled: () => seen.events.push('cancelled'),
            onError: (e) => seen.events.push(`error: ${e.message}`),
          });
        },
      },
    },
    maxMessageBytes: 1024,
  });
  port = await server.listen('127.0.0.1:0');
  session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
});
afterAll(async () => {
  session.close();
  await server.close();
});

interface Result {
  status: number | undefined;
  headers: Record<string, unknown>;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  answers: string[];
}

function open(
  path = '/test.Echo/Chat',
  extra: Record<string, string> = {},
): { s: ClientHttp2Stream; done: Promise<Result> } {
  const s = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extra,
  });
  s.on('error', () => undefined);
  const r: Result = { status: undefined, headers: {}, grpcStatus: undefined, grpcMessage: undefined, answers: [] };
  let pending = Buffer.alloc(0);
  s.on('response', (h) => {
    r.status = Number(h[':status']);
    r.headers = h;
    if (h['grpc-status'] !== undefined) {
      r.grpcStatus = String(h['grpc-status']);
      r.grpcMessage = h['grpc-message'] === undefined ? undefined : String(h['grpc-message']);
      s.close();
    }
  });
  // The server's status ends its side; the client's is ours to close then, as Envoy does.
  s.on('trailers', (t) => {
    r.grpcStatus = String(t['grpc-status']);
    r.grpcMessage = t['grpc-message'] === undefined ? undefined : String(t['grpc-message']);
    s.close();
  });
  s.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      r.answers.push(pending.subarray(5, 5 + len).toString());
      pending = pending.subarray(5 + len);
    }
  });
  const done = new Promise<Result>((resolve) => s.on('close', () => resolve(r)));
  return { s, done };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('framing', () => {
  it('takes a message split at every byte, and several messages in one DATA frame', async () => {
    const { s, done } = open();
    const bytes = Buffer.concat([
      grpcFrame(Buffer.from('split')),
      grpcFrame(Buffer.from('a')),
      grpcFrame(Buffer.from('b')),
    ]);
    // One byte per write: each arrives as its own DATA frame.
    for (const b of bytes.subarray(0, 10)) {
      s.write(Buffer.from([b]));
      await tick();
    }
    s.write(bytes.subarray(10));
    s.end(grpcFrame(Buffer.from('end')));
    const r = await done;
    expect(r.answers).toEqual(['SPLIT', 'A', 'B']);
    expect(r.grpcStatus).toBe('0');
    expect(r.headers['content-type']).toBe('application/grpc');
  });

  it('half-close: the handler hears end and answers with status OK in the trailers', async () => {
    const { s, done } = open();
    s.end(grpcFrame(Buffer.from('hi')));
    const r = await done;
    expect(r.answers).toEqual(['HI']);
    expect(r.grpcStatus).toBe('0');
    expect(calls.at(-1)!.events).toEqual(['end']);
  });

  it('an empty message (length 0) is a message', async () => {
    const { s, done } = open();
    s.end(grpcFrame(Buffer.alloc(0)));
    expect((await done).answers).toEqual(['']);
  });
});

describe('what the server refuses', () => {
  it('a failed call carries its status and a percent-encoded message', async () => {
    const { s, done } = open();
    s.write(grpcFrame(Buffer.from('fail')));
    const r = await done;
    expect(r.grpcStatus).toBe(String(GrpcStatus.FAILED_PRECONDITION));
    expect(decodeURIComponent(r.grpcMessage!)).toBe('asked to fail: 100% sure, ünïcode');
    s.close();
  });

  it('a message over the size limit: RESOURCE_EXHAUSTED as soon as its header arrives', async () => {
    const { s, done } = open();
    const head = Buffer.alloc(5);
    head.writeUInt32BE(4096, 1);
    s.write(head);
    const r = await done;
    expect(r.grpcStatus).toBe(String(GrpcStatus.RESOURCE_EXHAUSTED));
    expect(calls.at(-1)!.events[0]).toMatch(/^error: a message of 4096 bytes/);
  });

  it('an oversized length whose header arrives split across DATA frames: refused before buffering', async () => {
    const { s, done } = open();
    const head = Buffer.alloc(5);
    head.writeUInt32BE(0xffffffff, 1);
    for (const b of head) {
      s.write(Buffer.from([b]));
      await tick();
    }
    const r = await done;
    expect(r.grpcStatus).toBe(String(GrpcStatus.RESOURCE_EXHAUSTED));
    expect(calls.at(-1)!.events[0]).toMatch(/^error: a message of 4294967295 bytes/);
  });

  it('a compressed message: UNIMPLEMENTED (the server accepts identity only)', async () => {
    const { s, done } = open();
    s.write(grpcFrame(Buffer.from('x'), 1));
    const r = await done;
    expect(r.grpcStatus).toBe(String(GrpcStatus.UNIMPLEMENTED));
  });

  it('a message the codec cannot decode: INTERNAL, and the handler hears why', async () => {
    const { s, done } = open();
    s.write(grpcFrame(Buffer.from('undecodable')));
    const r = await done;
    expect(r.grpcStatus).toBe(String(GrpcStatus.INTERNAL));
    expect(calls.at(-1)!.events).toEqual(['error: a message that does not decode: not text the method takes']);
  });

  it('the stream ends inside a message: INTERNAL', async () => {
    const { s, done } = open();
    s.end(grpcFrame(Buffer.from('cut short')).subarray(0, 8));
    expect((await done).grpcStatus).toBe(String(GrpcStatus.INTERNAL));
  });

  it('an unknown method: UNIMPLEMENTED, trailers-only', async () => {
    const { s, done } = open('/test.Echo/Nope');
    s.end();
    const r = await done;
    expect(r.status).toBe(200);
    expect(r.grpcStatus).toBe(String(GrpcStatus.UNIMPLEMENTED));
  });

  it('grpc-encoding other than identity: UNIMPLEMENTED', async () => {
    const { s, done } = open('/test.Echo/Chat', { 'grpc-encoding': 'gzip' });
    s.end();
    expect((await done).grpcStatus).toBe(String(GrpcStatus.UNIMPLEMENTED));
  });

  it('not gRPC at all (another content type): HTTP 415', async () => {
    const s = session.request({ ':method': 'POST', ':path': '/test.Echo/Chat', 'content-type': 'application/json' });
    s.on('error', () => undefined);
    const status = await new Promise((resolve) => s.on('response', (h) => resolve(h[':status'])));
    expect(status).toBe(415);
    s.close();
  });
});

describe('the client goes away', () => {
  it('a reset before the server ended the call is a cancel', async () => {
    const { s, done } = open();
    s.write(grpcFrame(Buffer.from('one')));
    await new Promise((r) => s.once('data', r));
    // RST_STREAM alone, as Envoy ends a stream (Node's close(code) would half-close first).
    s.destroy();
    await done;
    await tick();
    expect(calls.at(-1)!.events).toEqual(['cancelled']);
  });

  it('grpc-timeout: the call ends with DEADLINE_EXCEEDED and the handler hears a cancel', async () => {
    const { s, done } = open('/test.Echo/Chat', { 'grpc-timeout': '50m' });
    s.write(grpcFrame(Buffer.from('slow')));
    const r = await done;
    expect(r.answers).toEqual(['SLOW']);
    expect(r.grpcStatus).toBe(String(GrpcStatus.DEADLINE_EXCEEDED));
    expect(calls.at(-1)!.events).toEqual(['cancelled']);
  });
});

describe('memory', () => {
  it('a closed call lets go of its listeners, so what they reach can be collected while Node still holds the stream', async () => {
    // Node keeps a closed stream's native handle, and the stream with it, until a full
    // collection (V8's scavenges treat the handle as a root): whatever the call's listeners
    // reach (the gate's whole request state) was promoted to the old space on every request.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const h2 = createServer();
    let held: ServerHttp2Stream | undefined;
    let state: WeakRef<object> | undefined;
    let callRef: WeakRef<object> | undefined;
    h2.on('stream', (stream) => {
      held = stream; // stands in for Node's own reference to the closed stream
      const request = { messages: [] as string[], big: new Array(1000).fill('x') };
      state = new WeakRef(request);
      const call = new H2Call<string, string>(stream, text, 1024, undefined);
      callRef = new WeakRef(call);
      call.listen({
        onMessage: (m) => request.messages.push(m),
        onEnd: () => call.end(),
        onCancelled: () => request.messages.push('cancelled'),
        onError: () => request.messages.push('error'),
      });
    });
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    const client = connect(`http://127.0.0.1:${(h2.address() as { port: number }).port}`);
    try {
      const s = client.request({
        ':method': 'POST',
        ':path': '/x',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      s.on('trailers', () => s.close());
      s.resume();
      s.end(grpcFrame(Buffer.from('hello')));
      await new Promise((r) => s.on('close', r));
      while (!held!.closed) await tick();
      await tick();
      gc();
      await tick();
      gc();
      expect(held!.closed).toBe(true);
      expect(state!.deref()).toBeUndefined();
      expect(callRef!.deref()).toBeUndefined();
    } finally {
      client.close();
      await new Promise((r) => h2.close(r));
    }
  });
});

describe('a large message announces itself before it is whole', () => {
  // A server whose listener answers "arriving <bytes>" at the notice and "got <bytes>" for each
  // message: the client sees the first before it has sent a large message's last bytes.
  let big: H2GrpcServer;
  let bigSession: ClientHttp2Session;
  const sizes: Codec<number, string> = {
    decode: (b) => b.length,
    encodeFramed: (m) => grpcFrame(Buffer.from(m)),
  };
  beforeAll(async () => {
    big = new H2GrpcServer({
      methods: {
        '/test.Echo/Chat': {
          codec: sizes as Codec<unknown, unknown>,
          handle: (c) => {
            const call = c as ServerCall<number, string>;
            call.listen({
              onMessage: (n) => call.write(`got ${n}`),
              onArriving: (n) => call.write(`arriving ${n}`),
              onEnd: () => call.end(),
            });
          },
        },
      },
      maxMessageBytes: 4 * 1024 * 1024,
    });
    bigSession = connect(`http://127.0.0.1:${await big.listen('127.0.0.1:0')}`);
    bigSession.on('error', () => undefined);
  });
  afterAll(async () => {
    bigSession?.close();
    await big?.close();
  });

  /** Opens a call and returns its answers as they come. */
  function openBig(): { s: ClientHttp2Stream; next: () => Promise<string> } {
    const s = bigSession.request({
      ':method': 'POST',
      ':path': '/test.Echo/Chat',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    s.on('error', () => undefined);
    return { s, next: grpcReader(s, (b) => b.toString()).next };
  }

  it('at its first bytes, once: the rest can wait behind other streams', async () => {
    const size = ARRIVING_NOTICE_BYTES + 1000;
    const frame = grpcFrame(Buffer.alloc(size, 0x61));
    const { s, next } = openBig();
    s.write(frame.subarray(0, 16 * 1024));
    expect(await next()).toBe(`arriving ${size}`);
    // More of it, then the rest: no second notice, and the message whole.
    s.write(frame.subarray(16 * 1024, 200 * 1024));
    await tick();
    s.write(frame.subarray(200 * 1024));
    expect(await next()).toBe(`got ${size}`);
    s.close();
  });

  it('also when its 5-byte header itself arrives split', async () => {
    const size = 2 * ARRIVING_NOTICE_BYTES;
    const frame = grpcFrame(Buffer.alloc(size, 0x62));
    const { s, next } = openBig();
    s.write(frame.subarray(0, 3));
    await tick();
    s.write(frame.subarray(3, 1000));
    expect(await next()).toBe(`arriving ${size}`);
    s.write(frame.subarray(1000));
    expect(await next()).toBe(`got ${size}`);
    s.close();
  });

  it('a message under the threshold, split, or one behind a whole message in the same write: no notice for the small one', async () => {
    const small = grpcFrame(Buffer.alloc(ARRIVING_NOTICE_BYTES - 1, 0x63));
    const { s, next } = openBig();
    s.write(small.subarray(0, 1000));
    await tick();
    s.write(small.subarray(1000));
    expect(await next()).toBe(`got ${ARRIVING_NOTICE_BYTES - 1}`);
    // A whole small message and the start of a large one in one write: the large one is announced.
    const large = grpcFrame(Buffer.alloc(ARRIVING_NOTICE_BYTES, 0x64));
    s.write(Buffer.concat([grpcFrame(Buffer.from('x')), large.subarray(0, 100)]));
    expect(await next()).toBe('got 1');
    expect(await next()).toBe(`arriving ${ARRIVING_NOTICE_BYTES}`);
    s.write(large.subarray(100));
    expect(await next()).toBe(`got ${ARRIVING_NOTICE_BYTES}`);
    s.close();
  });
});

describe('helpers', () => {
  it('percent-encodes what grpc-message may not carry raw', () => {
    expect(percentEncode('plain text: ok')).toBe('plain text: ok');
    expect(percentEncode('50% é\n')).toBe('50%25 %C3%A9%0A');
  });

  it('reads grpc-timeout in every unit', () => {
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('150m')).toBe(150);
    expect(parseGrpcTimeout('1M')).toBe(60_000);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('1500u')).toBe(2);
    expect(parseGrpcTimeout('10n')).toBe(1);
    expect(parseGrpcTimeout('123456789S')).toBeUndefined();
    expect(parseGrpcTimeout('5s')).toBeUndefined();
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
  });
});
