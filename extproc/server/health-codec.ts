// grpc.health.v1's two messages, encoded and decoded by hand: each has one field, and this keeps
// protobufjs and the ext_proc reflection root (~3 MiB of heap, README "Levers tried") out of a
// gate that Envoy and Kubernetes probe every few seconds. health-codec.test.ts holds it to
// protobufjs' answers.
//   message HealthCheckRequest { string service = 1; }
//   message HealthCheckResponse { ServingStatus status = 1; }

export interface CheckRequest {
  service?: string;
}
export interface CheckResponse {
  status: number;
}

/** A protobuf reader over one message: its fields, skipping what it does not know. */
class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let out = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.buf.length) throw new Error('health: truncated varint');
      const b = this.buf[this.pos++]!;
      // Only the low 32 bits are kept (an enum or a length); the rest is read and dropped.
      if (shift < 32) out |= (b & 0x7f) << shift;
      if (b < 0x80) return out >>> 0;
    }
    throw new Error('health: varint too long');
  }
  bytes(): Buffer {
    const len = this.varint();
    if (len > this.buf.length - this.pos) throw new Error('health: truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.advance(4);
    else throw new Error(`health: wire type ${wireType}`);
  }
  private advance(n: number): void {
    if (n > this.buf.length - this.pos) throw new Error('health: truncated field');
    this.pos += n;
  }
}

export function decodeCheckRequest(buf: Buffer): CheckRequest {
  const r = new Reader(buf);
  const out: CheckRequest = {};
  while (!r.done) {
    const tag = r.varint();
    if (tag === 0x0a) out.service = r.bytes().toString('utf8');
    else r.skip(tag & 7);
  }
  return out;
}

export function decodeCheckResponse(buf: Buffer): CheckResponse {
  const r = new Reader(buf);
  const out: CheckResponse = { status: 0 };
  while (!r.done) {
    const tag = r.varint();
    // An enum is an int32: a negative one arrives as ten bytes; the low 32 bits, signed.
    if (tag === 0x08) out.status = r.varint() | 0;
    else r.skip(tag & 7);
  }
  return out;
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

export function encodeCheckRequest(m: CheckRequest): Buffer {
  if (!m.service) return Buffer.alloc(0);
  const text = Buffer.from(m.service, 'utf8');
  return Buffer.concat([Buffer.from([0x0a, ...varintBytes(text.length)]), text]);
}

/** Statuses are the enum's 0-3: a proto3 default (0) is not written. */
export function encodeCheckResponse(m: CheckResponse): Buffer {
  if (m.status === 0) return Buffer.alloc(0);
  if (!Number.isInteger(m.status) || m.status < 0) throw new Error(`health: status ${m.status}`);
  return Buffer.from([0x08, ...varintBytes(m.status)]);
}
