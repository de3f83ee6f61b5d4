// grpc.health.v1.Health, so Envoy's gRPC health checks and Kubernetes gRPC probes can ask the
// gate whether it serves. "" and the ext_proc service name share one status.
import type { ServiceDefinition } from '@grpc/grpc-js';
import { type Codec, GrpcStatus, type MethodHandler, type ServerCall } from './h2-grpc.ts';
import {
  type CheckRequest,
  type CheckResponse,
  decodeCheckRequest,
  decodeCheckResponse,
  encodeCheckRequest,
  encodeCheckResponse,
} from './health-codec.ts';

const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

const codec: Codec<CheckRequest, CheckResponse> = {
  decode: decodeCheckRequest,
  encodeFramed: (m) => {
    const body = encodeCheckResponse(m);
    const framed = Buffer.allocUnsafe(5 + body.length);
    framed[0] = 0;
    framed.writeUInt32BE(body.length, 1);
    body.copy(framed, 5);
    return framed;
  },
};

/** The service as grpc-js clients describe it (tests and tools that probe the gate). */
export const healthServiceDefinition: ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeCheckRequest,
    requestDeserialize: decodeCheckRequest,
    responseSerialize: encodeCheckResponse,
    responseDeserialize: decodeCheckResponse,
  },
  Watch: {
    path: '/grpc.health.v1.Health/Watch',
    requestStream: false,
    responseStream: true,
    requestSerialize: encodeCheckRequest,
    requestDeserialize: decodeCheckRequest,
    responseSerialize: encodeCheckResponse,
    responseDeserialize: decodeCheckResponse,
  },
};

type HealthCall = ServerCall<CheckRequest, CheckResponse>;

export class HealthService {
  private serving = false;
  private readonly watchers = new Set<HealthCall>();

  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    for (const w of this.watchers) w.write({ status: this.status('') });
  }

  private status(service: string): number {
    if (service !== '' && service !== EXT_PROC_SERVICE) return SERVICE_UNKNOWN;
    return this.serving ? SERVING : NOT_SERVING;
  }

  /** The two methods, by path, for the gate's gRPC server. */
  readonly methods: Record<string, MethodHandler> = {
    '/grpc.health.v1.Health/Check': {
      codec: codec as Codec<unknown, unknown>,
      handle: (c) => {
        const call = c as HealthCall;
        // Unary: the one request message carries the question; answer it and end.
        call.listen({
          onMessage: (req) => {
            const service = req.service ?? '';
            const s = this.status(service);
            if (s === SERVICE_UNKNOWN) call.fail(GrpcStatus.NOT_FOUND, `unknown service ${service}`);
            else {
              call.write({ status: s });
              call.end();
            }
          },
        });
      },
    },
    '/grpc.health.v1.Health/Watch': {
      codec: codec as Codec<unknown, unknown>,
      handle: (c) => {
        const call = c as HealthCall;
        call.listen({
          onMessage: (req) => {
            call.write({ status: this.status(req.service ?? '') });
            this.watchers.add(call);
          },
          onCancelled: () => this.watchers.delete(call),
        });
      },
    },
  };

  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }
}
