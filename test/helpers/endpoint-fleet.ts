// Several test servers behind one multi-address target (`ipv4:a,b,c`), each scriptable as a
// whole: the way one sick pod of a Kubernetes Service behaves, whatever the request says.
//
//   const fleet = await startFleet(['unavailable', 'healthy', 'healthy']);
//   fleet.target                      // 'ipv4:127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3'
//   fleet.endpoints[0].setMode('healthy')   // the sick endpoint recovers
//   fleet.endpoints[1].failMethod('/resilient.test.v1.TestService/Echo', grpc.status.INTERNAL)
//   fleet.endpoints[0].arrived        // attempts that reached this endpoint, whatever their fate
//
// Each endpoint is a startTestServer() server (so request metadata scripts still work on the
// healthy ones) with a server interceptor in front that applies the endpoint's mode:
//   'healthy'         pass the call to the normal handlers
//   a status code     answer every call at once with that status, details "sick endpoint"
//   'hang'            never answer: the call ends by its deadline or cancellation
// and, per method path, a status to answer that method with (a broken method on every pod).
import * as grpc from '@grpc/grpc-js';
import { healthService, type HealthService } from './health-service.js';
import { startTestServer, type TestServer } from './test-server.js';

export type EndpointMode = 'healthy' | 'hang' | grpc.status;

export const SICK_DETAILS = 'sick endpoint';

export interface FleetEndpoint {
  readonly address: string;
  readonly server: TestServer;
  readonly mode: EndpointMode;
  /** Attempts that reached this endpoint (counted by the interceptor, before the mode applies). */
  readonly arrived: number;
  /** Attempts this endpoint answered with a failure status or left hanging. */
  readonly failed: number;
  /** The `x-call-id` of every attempt that arrived (undefined when it had none), in order. */
  readonly callIds: readonly (string | undefined)[];
  /** The endpoint's health service (`startFleet(modes, { health: true })`), else undefined. */
  readonly health: HealthService | undefined;
  setMode(mode: EndpointMode): void;
  /** Every call of `path` (e.g. '/resilient.test.v1.TestService/Echo') fails with `code`; undefined clears it. */
  failMethod(path: string, code: grpc.status | undefined): void;
  /**
   * Calls this endpoint holds for `slowMs` before passing them on (0: none), and those the client
   * cancelled while held: the way a slow pod looks, and proof that a call's loser was cancelled
   * on the wire.
   */
  readonly cancelledWhileHeld: number;
  /** Holds `share` of the attempts that arrive from now on (every 1/share-th, evenly: 1 holds all) for `slowMs`. */
  setSlow(slowMs: number, share?: number): void;
  /** Zeroes `arrived`, `failed` and `cancelledWhileHeld`. */
  resetCounts(): void;
}

export interface Fleet {
  readonly endpoints: readonly FleetEndpoint[];
  /** `ipv4:` target listing every endpoint in order. */
  readonly target: string;
  /** Sum of `arrived` over the endpoints. */
  arrived(): number;
  resetCounts(): void;
  /** Abrupt stop of every server (hung calls are cut). Idempotent. */
  close(): Promise<void>;
}

export const TEST_ECHO_PATH = '/resilient.test.v1.TestService/Echo';
export const USER_QUERY_PATH = '/users.v1.UserService/QueryBasicInfoByID';

export interface FleetOptions {
  /**
   * Each endpoint serves the standard health service (health-service.ts), SERVING for '' at
   * first. Its calls pass by the endpoint's mode and are not counted in `arrived`.
   */
  health?: boolean;
}

const HEALTH_PATH_PREFIX = '/grpc.health.v1.Health/';

export async function startFleet(modes: readonly EndpointMode[], options: FleetOptions = {}): Promise<Fleet> {
  if (modes.length === 0) throw new RangeError('startFleet needs at least one endpoint');
  const endpoints: FleetEndpoint[] = [];
  try {
    for (const mode of modes) endpoints.push(await startEndpoint(mode, options.health === true ? healthService() : undefined));
  } catch (error) {
    await Promise.all(endpoints.map((e) => e.server.kill()));
    throw error;
  }
  return {
    endpoints,
    target: `ipv4:${endpoints.map((e) => e.address).join(',')}`,
    arrived: () => endpoints.reduce((sum, e) => sum + e.arrived, 0),
    resetCounts: () => {
      for (const e of endpoints) e.resetCounts();
    },
    close: async () => {
      await Promise.all(endpoints.map((e) => e.server.kill()));
    },
  };
}

async function startEndpoint(initialMode: EndpointMode, health: HealthService | undefined): Promise<FleetEndpoint> {
  let mode = initialMode;
  let arrived = 0;
  let failed = 0;
  let slowMs = 0;
  let slowShare = 1;
  let passed = 0;
  let cancelledWhileHeld = 0;
  const callIds: (string | undefined)[] = [];
  const methodFailures = new Map<string, grpc.status>();

  const interceptor: grpc.ServerInterceptor = (methodDescriptor, call) => {
    if (methodDescriptor.path.startsWith(HEALTH_PATH_PREFIX)) return new grpc.ServerInterceptingCall(call);
    let held = false;
    let cancelled = false;
    const listener = new grpc.ServerListenerBuilder()
      .withOnCancel(() => {
        if (held) cancelledWhileHeld++;
        held = false;
        cancelled = true;
      })
      .withOnReceiveMetadata((metadata, next) => {
        arrived++;
        const callId = metadata.get('x-call-id')[0];
        callIds.push(typeof callId === 'string' ? callId : undefined);
        const methodCode = methodFailures.get(methodDescriptor.path);
        const code = methodCode ?? (typeof mode === 'number' ? mode : undefined);
        if (code !== undefined) {
          failed++;
          call.sendStatus({ code, details: SICK_DETAILS, metadata: new grpc.Metadata() });
        } else if (mode === 'hang') {
          failed++; // never answered: the client's deadline or cancellation ends it
        } else if (slowMs > 0 && Math.floor(++passed * slowShare) !== Math.floor((passed - 1) * slowShare)) {
          held = true;
          const timer = setTimeout(() => {
            held = false;
            if (!cancelled) next(metadata);
          }, slowMs);
          timer.unref();
        } else {
          next(metadata);
        }
      })
      .build();
    return new grpc.ServerInterceptingCall(call, { start: (next) => next(listener) });
  };

  const services = health === undefined ? [] : [health.service];
  const server = await startTestServer({ serverOptions: { interceptors: [interceptor] }, services });
  return {
    address: server.address,
    server,
    get mode() {
      return mode;
    },
    get arrived() {
      return arrived;
    },
    get failed() {
      return failed;
    },
    get cancelledWhileHeld() {
      return cancelledWhileHeld;
    },
    setSlow(ms, share = 1) {
      slowMs = ms;
      slowShare = share;
      passed = 0;
    },
    callIds,
    health,
    setMode(next) {
      mode = next;
    },
    failMethod(path, code) {
      if (code === undefined) methodFailures.delete(path);
      else methodFailures.set(path, code);
    },
    resetCounts() {
      arrived = 0;
      failed = 0;
      cancelledWhileHeld = 0;
      callIds.length = 0;
    },
  };
}
