import { describe, expect, it } from 'vitest';
import { parseVariant } from './ab.ts';

describe('bench:ab variants', () => {
  it.each([
    [
      'base',
      { name: 'base', profile: 'governed', nodeOptions: undefined, unixSocket: false, workers: 1, redis: false },
    ],
    [
      'semi:node=--max-semi-space-size=16 --max-old-space-size=256,uds',
      {
        name: 'semi',
        profile: 'governed',
        nodeOptions: '--max-semi-space-size=16 --max-old-space-size=256',
        unixSocket: true,
        workers: 1,
        redis: false,
      },
    ],
    [
      'w2:workers=2,profile=passthrough',
      { name: 'w2', profile: 'passthrough', nodeOptions: undefined, unixSocket: false, workers: 2, redis: false },
    ],
    [
      'r:redis,workers=2',
      { name: 'r', profile: 'governed', nodeOptions: undefined, unixSocket: false, workers: 2, redis: true },
    ],
    ['off:node=', { name: 'off', profile: 'governed', nodeOptions: '', unixSocket: false, workers: 1, redis: false }],
  ])('%s', (spec, variant) => {
    expect(parseVariant(spec)).toEqual(variant);
  });

  it.each([['Base'], ['x:workers=0'], ['x:uds=1'], ['x:heap=8'], ['x:profile='], ['x:redis=1']])(
    'refuses %s',
    (spec) => {
      expect(() => parseVariant(spec)).toThrow(/variant/);
    },
  );
});
