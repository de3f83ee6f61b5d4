// host:port values for the addresses the gate listens on. The port range is checked here, so a
// config that `check-config` accepts is one `serve` can bind (a 99999 used to pass the schema
// and fail only at listen time).
import { z } from 'zod';

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export const hostPort = z
  .string()
  .regex(HOST_PORT, 'expected host:port, for example 127.0.0.1:50051')
  .refine((s) => {
    const port = Number(HOST_PORT.exec(s)?.[2]);
    return !Number.isFinite(port) || (port >= 0 && port <= 65535);
  }, 'port must be between 0 and 65535 (0 picks a free port)');
