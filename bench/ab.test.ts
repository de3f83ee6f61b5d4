import { describe, expect, it } from 'vitest';
import { benchBody, parseVariant } from './ab.ts';
import { CHAT, DLP_CHAT } from './lib/common.ts';

/** A variant with no items: each row below says only what its spec changes. */
const BASE = {
  profile: 'governed',
  nodeOptions: undefined,
  nodeArgs: [],
  unixSocket: false,
  workers: 1,
  redis: false,
  audit: undefined,
  duplex: false,
  envoyHeaders: false,
  bin: undefined,
  rev: undefined,
  idle: false,
};

describe('bench:ab variants', () => {
  it.each([
    ['fd:duplex', { ...BASE, name: 'fd', duplex: true }],
    ['eh:envoyheaders', { ...BASE, name: 'eh', envoyHeaders: true }],
    [
      'q:profile=dlp,idle,args=--memory-reducer-favors-memory',
      { ...BASE, name: 'q', profile: 'dlp', idle: true, nodeArgs: ['--memory-reducer-favors-memory'] },
    ],
    ['n22:bin=/opt/node22/bin/node', { ...BASE, name: 'n22', bin: '/opt/node22/bin/node' }],
    ['before:rev=HEAD~1', { ...BASE, name: 'before', rev: 'HEAD~1' }],
    ['tag:rev=v1.0/x_y', { ...BASE, name: 'tag', rev: 'v1.0/x_y' }],
    [
      'v8:args=--heap-growing-percent=0 --trace-gc',
      { ...BASE, name: 'v8', nodeArgs: ['--heap-growing-percent=0', '--trace-gc'] },
    ],
    ['base', { ...BASE, name: 'base' }],
    [
      'semi:node=--max-semi-space-size=16 --max-old-space-size=256,uds',
      { ...BASE, name: 'semi', nodeOptions: '--max-semi-space-size=16 --max-old-space-size=256', unixSocket: true },
    ],
    ['w2:workers=2,profile=passthrough', { ...BASE, name: 'w2', profile: 'passthrough', workers: 2 }],
    ['r:redis,workers=2', { ...BASE, name: 'r', workers: 2, redis: true }],
    ['strict:audit=strict', { ...BASE, name: 'strict', audit: 'strict' }],
    ['off:node=', { ...BASE, name: 'off', nodeOptions: '' }],
  ])('%s', (spec, variant) => {
    expect(parseVariant(spec)).toEqual(variant);
  });

  it.each([
    ['Base'],
    ['x:workers=0'],
    ['x:uds=1'],
    ['x:envoyheaders=1'],
    ['x:idle=200'],
    ['x:bin='],
    ['x:rev='],
    ['x:rev=a b'],
    ['x:rev=$(id)'],
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
