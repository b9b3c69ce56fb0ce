// The standard health service (grpc.health.v1.Health) for test servers, loaded from
// protos/health.proto with proto-loader: its encoding is independent of the package's own
// (src/channel/health-check.ts encodes the two messages by hand).
//
//   const health = healthService();            // every service name unknown but '' (SERVING)
//   startTestServer({ services: [health.service] });
//   health.set('', 'NOT_SERVING');             // every open Watch of '' hears it at once
//   health.openWatches                          // Watch streams open now
//   health.failWatches(grpc.status.INTERNAL)     // every new Watch ends at once with INTERNAL
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const HEALTH_PROTO = fileURLToPath(new URL('../../protos/health.proto', import.meta.url));
const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO, { enums: String, defaults: true })) as unknown as {
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};
export const HealthClient = loaded.grpc.health.v1.Health;

export interface HealthService {
  /** To pass to startTestServer's `services`. */
  readonly service: readonly [grpc.ServiceDefinition, grpc.UntypedServiceImplementation];
  /** Sets a service name's status; every open Watch of it hears the change. */
  set(serviceName: string, status: HealthStatus): void;
  /** Watch streams open now. */
  readonly openWatches: number;
  /** Watch calls received since the start. */
  readonly watchesStarted: number;
  /** Service names asked for, in order of arrival. */
  readonly asked: readonly string[];
  /** From now on, every Watch call ends at once with `code` (undefined: they are served again). */
  failWatches(code: grpc.status | undefined): void;
}

type WatchCall = grpc.ServerWritableStream<{ service: string }, { status: HealthStatus }>;

export function healthService(initial: Record<string, HealthStatus> = { '': 'SERVING' }): HealthService {
  const statuses = new Map(Object.entries(initial));
  const watchers = new Set<WatchCall>();
  const asked: string[] = [];
  let started = 0;
  let failWith: grpc.status | undefined;
  const statusOf = (name: string): HealthStatus => statuses.get(name) ?? 'SERVICE_UNKNOWN';
  const implementation: grpc.UntypedServiceImplementation = {
    Check(call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const status = statuses.get(call.request.service);
      if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else callback(null, { status });
    },
    Watch(call: WatchCall) {
      started++;
      asked.push(call.request.service);
      if (failWith !== undefined) {
        call.emit('error', { code: failWith, details: 'health watch refused' });
        return;
      }
      watchers.add(call);
      const forget = () => watchers.delete(call);
      call.on('cancelled', forget);
      call.on('close', forget);
      call.on('error', forget);
      call.write({ status: statusOf(call.request.service) });
    },
  };
  return {
    service: [HealthClient.service, implementation],
    set(serviceName, status) {
      statuses.set(serviceName, status);
      for (const call of watchers) if (call.request.service === serviceName) call.write({ status });
    },
    get openWatches() {
      return watchers.size;
    },
    get watchesStarted() {
      return started;
    },
    asked,
    failWatches(code) {
      failWith = code;
    },
  };
}
