// A listener the gate cannot open, said in the config's terms: which field, which address,
// and the reason in words (`server.grpcAddress: cannot listen on 127.0.0.1:50051: address
// already in use (EADDRINUSE): ...`). grpc-js reports a failed bind as "No address added out of
// total 1 resolved errors: [listen EADDRINUSE: ...]" with the errno code only in its text.
import { constants } from 'node:os';
import { getSystemErrorMessage } from 'node:util';

/** What to do about the usual causes; `socket`: a Unix socket path, not host:port. */
function hint(code: string, socket: boolean): string | undefined {
  switch (code) {
    case 'EADDRINUSE':
      return socket ? undefined : 'another process is listening there, stop it or choose another port';
    case 'EACCES':
      return socket
        ? 'the gate cannot create a socket there (does the directory exist, may the gate write to it?)'
        : 'ports below 1024 need privileges';
    case 'EADDRNOTAVAIL':
      return 'no network interface of this machine has that address';
    case 'ENOENT':
      return socket ? 'the directory does not exist' : undefined;
  }
  return undefined;
}

/** Codes that are not errno values (getaddrinfo's), so the system has no words for them. */
const WORDS: Record<string, string> = { ENOTFOUND: 'host name not found' };

export class ListenError extends Error {
  /** The config field, "server.grpcAddress". */
  readonly field: string;
  readonly code: string | undefined;
  constructor(field: string, address: string, cause: unknown) {
    const code = errnoCode(cause);
    const socket = !/:\d+$/.test(address);
    super(`${field}: cannot listen on ${address}: ${reason(code, cause, socket)}`, { cause });
    this.name = 'ListenError';
    this.field = field;
    this.code = code;
  }

  /** A ListenError a gate worker thread reported: its message already says everything. */
  static relayed(field: string, message: string): ListenError {
    const err = new ListenError(field, '', undefined);
    err.message = message;
    return err;
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return /\b(E[A-Z]{4,})\b/.exec(err instanceof Error ? err.message : String(err))?.[1];
}

function reason(code: string | undefined, err: unknown, socket: boolean): string {
  if (code === undefined) {
    // No errno (grpc-js: "Name resolution failed for target dns:..."): its own first line.
    const text = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    return text.charAt(0).toLowerCase() + text.slice(1);
  }
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  const words = `${errno === undefined ? (WORDS[code] ?? 'failed') : getSystemErrorMessage(-errno)} (${code})`;
  const advice = hint(code, socket);
  return advice ? `${words}: ${advice}` : words;
}
