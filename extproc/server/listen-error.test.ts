import { describe, expect, it } from 'vitest';
import { ListenError } from './listen-error.ts';

const netError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('ListenError', () => {
  const table: { name: string; field: string; address: string; cause: unknown; says: string }[] = [
    {
      name: "grpc-js's bind failure, the code only in its text",
      field: 'server.grpcAddress',
      address: '127.0.0.1:50051',
      cause: new Error(
        'No address added out of total 1 resolved errors: [listen EADDRINUSE: address already in use 127.0.0.1:50051]',
      ),
      says:
        'server.grpcAddress: cannot listen on 127.0.0.1:50051: address already in use (EADDRINUSE): ' +
        'another process is listening there, stop it or choose another port',
    },
    {
      name: "node:net's error, with its code",
      field: 'server.adminAddress',
      address: '0.0.0.0:80',
      cause: netError('EACCES', 'listen EACCES: permission denied 0.0.0.0:80'),
      says: 'server.adminAddress: cannot listen on 0.0.0.0:80: permission denied (EACCES): ports below 1024 need privileges',
    },
    {
      name: 'a Unix socket gets the hint about its directory',
      field: 'server.unixSocket',
      address: '/run/lm-gate/gate.sock',
      cause: new Error('No address added out of total 1 resolved errors: [listen EACCES: permission denied /run/x]'),
      says:
        'server.unixSocket: cannot listen on /run/lm-gate/gate.sock: permission denied (EACCES): ' +
        'the gate cannot create a socket there (does the directory exist, may the gate write to it?)',
    },
    {
      name: 'a host name that does not resolve',
      field: 'server.adminAddress',
      address: 'nohost.invalid:9901',
      cause: netError('ENOTFOUND', 'getaddrinfo ENOTFOUND nohost.invalid'),
      says: 'server.adminAddress: cannot listen on nohost.invalid:9901: host name not found (ENOTFOUND)',
    },
    {
      name: 'no code at all: the first line of the message',
      field: 'server.grpcAddress',
      address: 'nohost.invalid:50051',
      cause: new Error('Name resolution failed for target dns:nohost.invalid:50051\nmore'),
      says: 'server.grpcAddress: cannot listen on nohost.invalid:50051: name resolution failed for target dns:nohost.invalid:50051',
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const err = new ListenError(t.field, t.address, t.cause);
      expect(err.message).toBe(t.says);
      expect(err.field).toBe(t.field);
      expect(err.cause).toBe(t.cause);
    });
  }
});
