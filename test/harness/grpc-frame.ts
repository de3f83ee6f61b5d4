/** One gRPC frame as it goes on an HTTP/2 stream: the compressed flag, the big-endian length,
 * the message. For tests that speak raw HTTP/2 to the gate. */
export function grpcFrame(msg: Buffer, compressed = 0): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out[0] = compressed;
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

/** The messages a server writes on one HTTP/2 stream (any Node readable of its DATA), unframed
 * and decoded as they come: `next()` is the next one, or rejects after `ms`. */
export function grpcReader<T>(
  stream: NodeJS.ReadableStream,
  decode: (b: Buffer) => T,
): { next(ms?: number): Promise<T> } {
  const ready: T[] = [];
  const waiting: ((m: T) => void)[] = [];
  let pending = Buffer.alloc(0);
  stream.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      const m = decode(pending.subarray(5, 5 + len));
      pending = pending.subarray(5 + len);
      const w = waiting.shift();
      if (w) w(m);
      else ready.push(m);
    }
  });
  return {
    next: (ms = 3000) =>
      ready.length > 0
        ? Promise.resolve(ready.shift()!)
        : new Promise<T>((resolve, reject) => {
            const done = (m: T) => {
              clearTimeout(t);
              resolve(m);
            };
            const t = setTimeout(() => {
              waiting.splice(waiting.indexOf(done), 1);
              reject(new Error(`no message within ${ms} ms`));
            }, ms);
            waiting.push(done);
          }),
  };
}
