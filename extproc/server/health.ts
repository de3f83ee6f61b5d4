// grpc.health.v1.Health, so Envoy's gRPC health checks and Kubernetes gRPC probes can ask the
// gate whether it serves. "" and the ext_proc service name share one status.
import type { ServerUnaryCall, ServerWritableStream, ServiceDefinition, sendUnaryData } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { HealthCheckRequestType, HealthCheckResponseType } from './protocol.ts';

const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

interface CheckRequest {
  service?: string;
}
interface CheckResponse {
  status: number;
}

const codec = {
  requestSerialize: (m: CheckRequest) => Buffer.from(HealthCheckRequestType.encode(m).finish()),
  requestDeserialize: (b: Buffer) => HealthCheckRequestType.decode(b) as unknown as CheckRequest,
  responseSerialize: (m: CheckResponse) => Buffer.from(HealthCheckResponseType.encode(m).finish()),
  responseDeserialize: (b: Buffer) => HealthCheckResponseType.decode(b) as unknown as CheckResponse,
};

export const healthServiceDefinition: ServiceDefinition = {
  Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, ...codec },
  Watch: { path: '/grpc.health.v1.Health/Watch', requestStream: false, responseStream: true, ...codec },
};

export class HealthService {
  private serving = false;
  private readonly watchers = new Set<ServerWritableStream<CheckRequest, CheckResponse>>();

  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    for (const w of this.watchers) w.write({ status: this.status('') });
  }

  private status(service: string): number {
    if (service !== '' && service !== EXT_PROC_SERVICE) return SERVICE_UNKNOWN;
    return this.serving ? SERVING : NOT_SERVING;
  }

  readonly handlers = {
    Check: (call: ServerUnaryCall<CheckRequest, CheckResponse>, cb: sendUnaryData<CheckResponse>) => {
      const service = call.request.service ?? '';
      const s = this.status(service);
      if (s === SERVICE_UNKNOWN) cb({ code: GrpcStatus.NOT_FOUND, details: `unknown service ${service}` });
      else cb(null, { status: s });
    },
    Watch: (call: ServerWritableStream<CheckRequest, CheckResponse>) => {
      call.write({ status: this.status(call.request.service ?? '') });
      this.watchers.add(call);
      call.on('cancelled', () => this.watchers.delete(call));
    },
  };

  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }
}
