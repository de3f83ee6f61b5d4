// The `dlp` section's fields that say where the gate applies the policies (the policies
// themselves are extproc/dlp/config.ts): which direction is inspected, and what happens to
// a compressed request body.
import { z } from 'zod';

export const dlpGateFields = {
  inspect: z
    .enum(['off', 'request', 'both'])
    .default('off')
    .describe(
      'Where the request’s policy (dlp.assign, else defaultPolicy) is applied by the dlp.request and dlp.response stages: off; request (every text the model would see, before routing and policy, which read the data classes found); or both (also every text the client receives, streams included, with pseudonyms restored). Both stages must also be in pipeline.stages (they are by default).',
    ),
  compressedRequests: z
    .enum(['refuse', 'inspect'])
    .default('refuse')
    .describe(
      'A request body with Content-Encoding gzip, deflate or br: refuse it (415), or decompress it (up to maxDecompressedBytes, else 413) and inspect and forward the decompressed body. Never forwarded uninspected.',
    ),
  maxDecompressedBytes: z
    .int()
    .positive()
    .default(8 * 1024 * 1024)
    .describe(
      'The most bytes a compressed request body may decompress to: a decompression bomb is refused (413) at this size.',
    ),
};
