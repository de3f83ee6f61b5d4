import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig as parseText } from '../config/load.ts';
import { workerAddresses, workerCount } from './workers.ts';

const parseConfig = (c: Record<string, unknown>) => parseText(stringify(c), 'test.yaml', {});
const server = (s: Record<string, unknown>) => parseConfig({ server: s }).server;

describe('workerAddresses', () => {
  it.each([
    ['port plus index', { grpcAddress: '127.0.0.1:50051' }, 2, '127.0.0.1:50053', undefined],
    ['port 0: each worker picks', { grpcAddress: '127.0.0.1:0' }, 3, '127.0.0.1:0', undefined],
    ['IPv6 host kept', { grpcAddress: '[::1]:7000' }, 1, '[::1]:7001', undefined],
    [
      'socket: index before the extension',
      { grpcAddress: '0.0.0.0:50051', unixSocket: '/run/lm-gate/ext-proc.sock' },
      1,
      '0.0.0.0:50052',
      '/run/lm-gate/ext-proc-1.sock',
    ],
    ['socket without extension', { unixSocket: '/run/gate' }, 0, '127.0.0.1:50051', '/run/gate-0'],
  ])('%s', (_name, s, index, grpcAddress, unixSocket) => {
    expect(workerAddresses(server(s), index)).toEqual({ grpcAddress, unixSocket });
  });
});

describe('workerCount', () => {
  it('is 1 by default, the number given, or one per core for auto', () => {
    expect(workerCount(parseConfig({}))).toBe(1);
    expect(workerCount(parseConfig({ server: { workers: 3 } }))).toBe(3);
    expect(workerCount(parseConfig({ server: { workers: 'auto' } }))).toBeGreaterThanOrEqual(1);
  });
  it('refuses worker ports past 65535', () => {
    expect(() => parseConfig({ server: { grpcAddress: '127.0.0.1:65534', workers: 3 } })).toThrow(
      /server\.workers: worker ports run from grpcAddress's port 65534 to 65536, past 65535/,
    );
    expect(workerCount(parseConfig({ server: { grpcAddress: '127.0.0.1:65534', workers: 2 } }))).toBe(2);
  });
  it('refuses 0, more than 64 and other words', () => {
    for (const workers of [0, 65, 'all', 1.5]) expect(() => parseConfig({ server: { workers } })).toThrow(/workers/);
  });
});
