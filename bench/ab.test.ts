import { describe, expect, it } from 'vitest';
import { benchBody, parseVariant } from './ab.ts';
import { CHAT, DLP_CHAT } from './lib/common.ts';

describe('bench:ab variants', () => {
  it.each([
    [
      'fd:duplex',
      {
        name: 'fd',
        profile: 'governed',
        nodeOptions: undefined,
        nodeArgs: [],
        unixSocket: false,
        workers: 1,
        redis: false,
        audit: undefined,
        duplex: true,
      },
    ],
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
        duplex: false,
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
        duplex: false,
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
        duplex: false,
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
        duplex: false,
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
        duplex: false,
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
        duplex: false,
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
        duplex: false,
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

  it('--body picks the small chat body or the dlp prompt, and refuses anything else', () => {
    expect(benchBody('chat')).toBe(CHAT);
    expect(benchBody('dlp')).toBe(DLP_CHAT);
    expect(() => benchBody('big')).toThrow(/chat or dlp/);
  });
});
