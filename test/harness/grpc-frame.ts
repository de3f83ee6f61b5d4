/** One gRPC frame as it goes on an HTTP/2 stream: the compressed flag, the big-endian length,
 * the message. For tests that speak raw HTTP/2 to the gate. */
export function grpcFrame(msg: Buffer, compressed = 0): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out[0] = compressed;
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}
