// ioredis is loaded when the first Redis client is made, not by importing the gate: a gate with
// no Redis section keeps its ~2 MiB of heap and code out (README "Levers tried").
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lastLineInFreshProcess } from '../../test/harness/fresh-process.ts';

const server = fileURLToPath(new URL('../server/grpc-server.ts', import.meta.url));
const connection = fileURLToPath(new URL('./connection.ts', import.meta.url));

/** In a fresh process: import the gate's server, optionally make a client, and say whether any
 * ioredis module is in Node's CommonJS cache. */
async function ioredisLoaded(makeClient: boolean): Promise<boolean> {
  const line = await lastLineInFreshProcess(`
    await import(${JSON.stringify(server)});
    if (${makeClient}) {
      const { createRedisClient } = await import(${JSON.stringify(connection)});
      const c = createRedisClient({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:' }, 'test', { lazyConnect: true });
      c.disconnect();
    }
    console.log(loaded('ioredis'));`);
  return line === 'true';
}

describe('ioredis loading', () => {
  it('is not loaded by importing the gate, and is once a client is made', async () => {
    expect(await ioredisLoaded(false)).toBe(false);
    expect(await ioredisLoaded(true)).toBe(true);
  }, 60_000);
});
