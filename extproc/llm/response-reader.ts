// The one reader of a response body per request. Stages ask for it (ctx.readResponseBody) in
// onResponseHeaders; the state machine opens it here once every stage has spoken, and feeds it
// every body chunk: SSE and NDJSON are framed once for all of them, JSON is scanned once. It keeps
// usage and the served model current on the context, hands decoded events to stages that asked
// for events, and withholds the usage event the gate asked upstream for.
//
// How the body is read is decided here too, so Envoy never buffers an unbounded body: streams are
// read STREAMED; a JSON body BUFFERED (one message) only when its content-length is known and at
// most server.maxBufferedResponseBytes, else STREAMED through the incremental JSON reader.
import type { ApiKind } from './apis.ts';
import { createJsonUsageReader, type JsonUsageReader } from './json-usage-reader.ts';
import {
  createResponseStream,
  type ResponseEvent,
  type ResponseStream,
  type Uninspectable,
} from './response-stream.ts';
import { needsBody } from './shapes.ts';
import { responseFormat, type Usage } from './usage.ts';

/** What the stages asked of the response body; the union of every ask. */
export interface ResponseReading {
  /** Decode every streamed event for onResponseEvent hooks (they may drop, replace or end). */
  events: boolean;
  /** Decode every streamed event for onResponseEvent hooks that only read it (metering keeps
   * the delivered text): the bytes pass as they came, so a content-length stands. */
  observeEvents?: boolean;
  /** Withhold OpenAI's usage-only event, which the gate caused (include_usage injected). */
  withholdUsageEvent: boolean;
}

export interface ResponseReader {
  push(chunk: Buffer, endOfStream: boolean): Buffer;
  /** Streams read for read-only listeners only: hand the events of the chunks pushed so far to
   * them (their decoding waits until the chunk's answer is on its way; push and the stream's
   * end do it too). */
  flushEvents(): void;
  /** Events waiting for flushEvents. */
  readonly deferredEvents: number;
  readonly usage: Usage | undefined;
  readonly model: string | undefined;
  /** Streams only: end the client's stream with an error event (see ResponseStream). */
  readonly stream: ResponseStream | undefined;
}

export interface OpenedReader {
  reader: ResponseReader;
  mode: 'BUFFERED' | 'STREAMED';
  /** The bytes the client gets may differ from upstream's: its content-length cannot stand. */
  rewrites: boolean;
}

export interface ResponseFacts {
  api: ApiKind;
  status: number | undefined;
  headers: ReadonlyMap<string, string>;
  maxBufferedBytes: number;
}

/** The reader for this response, or why there is none: only a 2xx answer of an API with a body
 * is read, in a format the gate can read, without a content-encoding. */
export function openResponseReader(
  facts: ResponseFacts,
  reading: ResponseReading,
  onEvent: ((event: ResponseEvent) => void) | undefined,
  onUninspectable?: (why: Uninspectable) => void,
): OpenedReader | { skipped: string } | undefined {
  if (!needsBody(facts.api)) return undefined;
  if (facts.status === undefined || facts.status < 200 || facts.status >= 300) return undefined;
  const encoding = facts.headers.get('content-encoding');
  // The API-shape stage asks upstream for identity encoding; a server that compresses anyway
  // cannot be read.
  if (encoding !== undefined && encoding !== 'identity') return { skipped: `response content-encoding ${encoding}` };
  const format = responseFormat(facts.headers.get('content-type'));
  if (format === 'sse' || format === 'ndjson') {
    const stream = createResponseStream({
      format,
      kind: facts.api,
      dropUsageEvent: reading.withholdUsageEvent,
      onEvent: reading.events || reading.observeEvents === true ? onEvent : undefined,
      readOnlyEvents: !reading.events,
      deferReadOnlyEvents: true,
      onUninspectable,
    });
    return {
      reader: new Reader(stream, stream),
      mode: 'STREAMED',
      rewrites: reading.withholdUsageEvent || reading.events,
    };
  }
  if (format === 'json') {
    const json = createJsonUsageReader(facts.api);
    const length = facts.headers.get('content-length');
    const known = length !== undefined && /^\d+$/.test(length) && Number(length) <= facts.maxBufferedBytes;
    return {
      reader: new Reader(json, undefined),
      mode: known ? 'BUFFERED' : 'STREAMED',
      rewrites: false,
    };
  }
  return undefined;
}

class Reader implements ResponseReader {
  private readonly inner: ResponseStream | JsonUsageReader;
  readonly stream: ResponseStream | undefined;
  constructor(inner: ResponseStream | JsonUsageReader, stream: ResponseStream | undefined) {
    this.inner = inner;
    this.stream = stream;
  }
  push(chunk: Buffer, endOfStream: boolean): Buffer {
    // A stream returns what the client gets; the JSON reader only observes.
    if (this.stream !== undefined) return this.stream.push(chunk, endOfStream);
    this.inner.push(chunk, endOfStream);
    return chunk;
  }
  flushEvents(): void {
    this.stream?.flushEvents();
  }
  get deferredEvents(): number {
    return this.stream === undefined ? 0 : this.stream.deferredEvents;
  }
  get usage(): Usage | undefined {
    return this.inner.usage;
  }
  get model(): string | undefined {
    return this.inner.model;
  }
}
