// An overloaded backend for the adaptive-throttling tests: a real grpc-js server on 127.0.0.1
// (one or more ports) whose TestService/Echo takes a call only when `takes()` says it has room,
// and refuses the others at once with `refuseCode` (RESOURCE_EXHAUSTED by default), as a server
// that sheds load does. It counts what it received and what it took, in all and per `x-call-id`.
import * as grpc from '@grpc/grpc-js';
import { testServiceDefinition, type EchoRequest, type EchoResponse } from './protos.js';

export interface OverloadedBackendOptions {
  /** Whether the server has room for one more call now; called once per call received. */
  takes: () => boolean;
  /** The status of a refused call. Default: RESOURCE_EXHAUSTED. */
  refuseCode?: grpc.status;
  /** How many ports to listen on (one endpoint each). Default: 1. */
  ports?: number;
}

export interface OverloadedBackend {
  /** `127.0.0.1:PORT` of each port. */
  readonly addresses: readonly string[];
  /** Calls received (taken and refused). */
  readonly received: number;
  /** Calls taken (answered OK). */
  readonly accepted: number;
  /** Calls received carrying `x-call-id: id` (attempts of that call). */
  attemptsOf(id: string): number;
  close(): Promise<void>;
}

export async function startOverloadedBackend(options: OverloadedBackendOptions): Promise<OverloadedBackend> {
  const server = new grpc.Server();
  const perCall = new Map<string, number>();
  const counts = { received: 0, accepted: 0 };
  const refuseCode = options.refuseCode ?? grpc.status.RESOURCE_EXHAUSTED;
  server.addService(testServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      counts.received++;
      const id = call.metadata.get('x-call-id')[0];
      if (typeof id === 'string') perCall.set(id, (perCall.get(id) ?? 0) + 1);
      if (!options.takes()) {
        callback({ code: refuseCode, details: 'overloaded: try later' });
        return;
      }
      counts.accepted++;
      callback(null, { message: call.request.message, deadlineMs: 0, count: 1, payload: Buffer.alloc(0) });
    },
  });
  const addresses: string[] = [];
  for (let i = 0; i < (options.ports ?? 1); i++) {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    addresses.push(`127.0.0.1:${port}`);
  }
  return {
    addresses,
    get received() {
      return counts.received;
    },
    get accepted() {
      return counts.accepted;
    },
    attemptsOf: (id) => perCall.get(id) ?? 0,
    close: () => {
      server.forceShutdown();
      return Promise.resolve();
    },
  };
}

/**
 * A random source for `Math.random` with the spread of a uniform one and none of its luck: the
 * golden-ratio sequence (k x 0.618... mod 1). Over any n draws, the share below p is within a
 * few draws of p x n, so a throttle that rejects with probability p rejects that share, run after
 * run: the figures of a test that uses it do not depend on a lucky seed.
 */
export function evenlySpreadRandom(): () => number {
  let k = 0;
  return () => {
    k++;
    return (k * 0.6180339887498949) % 1;
  };
}
