// Decompressing a request body so it can be judged (dlp.compressedRequests: inspect): one
// content coding (gzip, deflate, br), on libuv's thread pool, and never to more than `max`
// bytes, so a decompression bomb is refused (413) instead of filling memory.
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate } from 'node:zlib';
import { refuse } from '../pipeline/errors.ts';

export type Coding = 'gzip' | 'deflate' | 'br';

/** The one coding a Content-Encoding names, or undefined (identity, several, or unknown). */
export function codingOf(header: string): Coding | undefined {
  const c = header.trim().toLowerCase();
  if (c === 'gzip' || c === 'x-gzip') return 'gzip';
  if (c === 'deflate' || c === 'br') return c;
  return undefined;
}

const run = { gzip: promisify(gunzip), deflate: promisify(inflate), br: promisify(brotliDecompress) };

export async function decompress(coding: Coding, body: Buffer, max: number): Promise<Buffer> {
  try {
    return await run[coding](body, { maxOutputLength: max });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError)
      throw refuse('request_too_large', `The request body decompresses to more than ${max} bytes.`);
    throw refuse('unsupported_content_encoding', `The request body is not valid ${coding} data.`);
  }
}
