// A client that speaks ext_proc the way Envoy does: one bidirectional stream per HTTP request,
// one ProcessingRequest per phase, waiting for each answer. Used by the integration tests to
// drive every protocol edge case over a real gRPC connection.
import {
  type ClientDuplexStream,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { extProcServiceDefinition } from '../../extproc/server/grpc-server.ts';
import type { ProcessingResponse } from '../../extproc/server/protocol.ts';

const Client = makeGenericClientConstructor(extProcServiceDefinition, 'ExternalProcessor');

export type Msg = Record<string, unknown>;

export function headers(
  pairs: Record<string, string>,
  endOfStream = false,
): { headers: { headers: { key: string; rawValue: Buffer }[] }; endOfStream: boolean } {
  return {
    headers: { headers: Object.entries(pairs).map(([key, v]) => ({ key, rawValue: Buffer.from(v, 'latin1') })) },
    endOfStream,
  };
}

export const requestHeaders = (pairs: Record<string, string>, endOfStream = false, extra: Msg = {}): Msg => ({
  requestHeaders: headers(pairs, endOfStream),
  ...extra,
});
export const requestBody = (body: string | Buffer, endOfStream = true, extra: Msg = {}): Msg => ({
  requestBody: { body: Buffer.from(body), endOfStream },
  ...extra,
});
export const responseHeaders = (pairs: Record<string, string>, endOfStream = false, extra: Msg = {}): Msg => ({
  responseHeaders: headers(pairs, endOfStream),
  ...extra,
});
export const responseBody = (body: string | Buffer, endOfStream = false, extra: Msg = {}): Msg => ({
  responseBody: { body: Buffer.from(body), endOfStream },
  ...extra,
});

export type Answer = ProcessingResponse & { response?: string };

export class ExtProcStream {
  private readonly call: ClientDuplexStream<Msg, Answer>;
  private readonly answers: Answer[] = [];
  private waiters: ((a: Answer | undefined) => void)[] = [];
  readonly status: Promise<{ code: number; details: string }>;
  ended = false;

  constructor(call: ClientDuplexStream<Msg, Answer>) {
    this.call = call;
    call.on('data', (a: Answer) => {
      const w = this.waiters.shift();
      if (w) w(a);
      else this.answers.push(a);
    });
    this.status = new Promise((resolve) => {
      call.on('status', (s) => resolve({ code: s.code, details: s.details }));
      call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
    });
    call.on('end', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
    call.on('error', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
  }

  send(msg: Msg): void {
    this.call.write(msg);
  }

  /** The next answer, or undefined if the stream ended first, or throws after timeoutMs. */
  next(timeoutMs = 2000): Promise<Answer | undefined> {
    const a = this.answers.shift();
    if (a) return Promise.resolve(a);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (x: Answer | undefined) => {
        clearTimeout(t);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }

  /** Send and wait for the answer to it. An override_message_timeout the gate sends first (a
   * request to wait longer, not an answer; Envoy handles it apart) is skipped, as Envoy does. */
  async exchange(msg: Msg, timeoutMs?: number): Promise<Answer> {
    this.send(msg);
    for (;;) {
      const a = await this.next(timeoutMs);
      if (!a) throw new Error('stream ended without an answer');
      if (a.overrideMessageTimeout && a.response === undefined) continue;
      return a;
    }
  }

  /** Resolves true if no answer arrives within ms. */
  async silentFor(ms: number): Promise<boolean> {
    try {
      return (await this.next(ms)) === undefined;
    } catch {
      return true;
    }
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

export class ExtProcClient {
  private readonly client: InstanceType<typeof Client>;
  constructor(address: string) {
    this.client = new Client(address, credentials.createInsecure());
  }
  open(): ExtProcStream {
    const call = (this.client as unknown as { Process(m: Metadata): ClientDuplexStream<Msg, Answer> }).Process(
      new Metadata(),
    );
    return new ExtProcStream(call);
  }
  close(): void {
    this.client.close();
  }
}

// ---- Fixtures shared by the suites that drive the gate with this client ----

/** Request headers of a chat completion as Envoy forwards them, with a fresh x-request-id. */
export const chatHeadersFor = (key: string, extra: Record<string, string> = {}): Record<string, string> => ({
  ':method': 'POST',
  ':path': '/v1/chat/completions',
  ':authority': 'llm.local',
  ':scheme': 'http',
  'content-type': 'application/json',
  authorization: `Bearer ${key}`,
  'x-request-id': `req-${Math.random().toString(36).slice(2)}`,
  ...extra,
});

export const chatBody = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ model: 'mock-small', messages: [{ role: 'user', content: 'hi there' }], ...extra });

export const sse = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
