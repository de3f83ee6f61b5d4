import { describe, expect, it } from 'vitest';
import { parseVariant } from './ab.ts';

describe('bench:ab variants', () => {
  it.each([
    [
      'v8:args=--heap-growing-percent=0 --trace-gc',
      {
        name: 'v8',
        profile: 'governed',
        nodeOptions: undefined,
        nodeArgs: ['--heap-growing-percent=0', '--trace-gc'],
        unixSocket: false,
        workers: 1,
        redis: false,
        audit: undefined,
      },
    ],
    [
      'base',
      {
        name: 'base',
        profile: 'governed',
        nodeOptions: undefined,
        nodeArgs: [],
        unixSocket: false,
        workers: 1,
        redis: false,
        audit: undefined,
      },
    ],
    [
      'semi:node=--max-semi-space-size=16 --max-old-space-size=256,uds',
      {
        name: 'semi',
        profile: 'governed',
        nodeOptions: '--max-semi-space-size=16 --max-old-space-size=256',
        nodeArgs: [],
        unixSocket: true,
        workers: 1,
        redis: false,
        audit: undefined,
      },
    ],
    [
      'w2:workers=2,profile=passthrough',
      {
        name: 'w2',
        profile: 'passthrough',
        nodeOptions: undefined,
        nodeArgs: [],
        unixSocket: false,
        workers: 2,
        redis: false,
        audit: undefined,
      },
    ],
    [
      'r:redis,workers=2',
      {
        name: 'r',
        profile: 'governed',
        nodeOptions: undefined,
        nodeArgs: [],
        unixSocket: false,
        workers: 2,
        redis: true,
        audit: undefined,
      },
    ],
    [
      'strict:audit=strict',
      {
        name: 'strict',
        profile: 'governed',
        nodeOptions: undefined,
        nodeArgs: [],
        unixSocket: false,
        workers: 1,
        redis: false,
        audit: 'strict',
      },
    ],
    [
      'off:node=',
      {
        name: 'off',
        profile: 'governed',
        nodeOptions: '',
        nodeArgs: [],
        unixSocket: false,
        workers: 1,
        redis: false,
        audit: undefined,
      },
    ],
  ])('%s', (spec, variant) => {
    expect(parseVariant(spec)).toEqual(variant);
  });

  it.each([
    ['Base'],
    ['x:workers=0'],
    ['x:uds=1'],
    ['x:heap=8'],
    ['x:profile='],
    ['x:redis=1'],
    ['x:audit=sync'],
    ['x:audit'],
  ])('refuses %s', (spec) => {
    expect(() => parseVariant(spec)).toThrow(/variant/);
  });
});
