// A real grpc-js server, in this process, implementing TestService and UserService with the
// scripted handlers of test-handlers.ts (what a request's metadata can script: call-script.ts),
// and recording every call it receives (call-log.ts). Its lifecycle: start on a port (0 or a
// previous server's, to restart "the same" server), stop gracefully, or kill abruptly.
// The same server in a child process: test-server-process.ts.
import * as grpc from '@grpc/grpc-js';
import { CallLog, type CallRecord } from './call-log.js';
import { testServiceDefinition, userServiceDefinition } from './protos.js';
import { testServiceHandlers, userServiceHandlers } from './test-handlers.js';

export interface TestServerOptions {
  /** Defaults to 0 (ephemeral). Pass a previous server's port to restart "the same" server. */
  port?: number;
  host?: string;
  credentials?: grpc.ServerCredentials;
  /** Passed to the grpc.Server constructor (keepalive enforcement, message size limits...). */
  serverOptions?: grpc.ServerOptions;
  /**
   * Keep a record of every call in `calls` (default true). The server process of the
   * benchmarks turns it off: a record per call holds its metadata for the life of the process,
   * and the heap that grows with them slows the server (and skews the client's figures) as a run
   * goes on. Counts per `x-call-id` (attempt numbers, scripts) still work without records.
   */
  keepRecords?: boolean;
  /** More services to serve beside TestService and UserService (the health service, say). */
  services?: ReadonlyArray<readonly [grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>;
}

export interface TestServer {
  readonly port: number;
  readonly address: string;
  /** Every call received, in arrival order. */
  readonly calls: CallRecord[];
  /** Number of calls received carrying `x-call-id: callId`. */
  callsFor(callId: string): number;
  /** Graceful: stop accepting, wait for in-flight calls to finish. Idempotent. */
  stop(): Promise<void>;
  /** Abrupt: close every connection now, cutting in-flight calls. Idempotent. */
  kill(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const host = options.host ?? '127.0.0.1';
  const server = new grpc.Server(options.serverOptions);
  const log = new CallLog(options.keepRecords !== false);
  server.addService(testServiceDefinition, testServiceHandlers(log));
  server.addService(userServiceDefinition, userServiceHandlers(log));
  for (const [definition, implementation] of options.services ?? []) server.addService(definition, implementation);
  const port = await bind(server, formatAddress(host, options.port ?? 0), options.credentials ?? grpc.ServerCredentials.createInsecure());

  let stopping: Promise<void> | undefined;
  let killed = false;
  return {
    port,
    address: formatAddress(host, port),
    calls: log.calls,
    callsFor: (callId) => log.countFor(callId),
    stop() {
      stopping ??= new Promise((resolve) => server.tryShutdown(() => resolve()));
      return stopping;
    },
    kill() {
      if (!killed) {
        killed = true;
        // Abort our own timers first so no handler tries to answer on a dead stream.
        log.abortAll();
        server.forceShutdown();
      }
      return Promise.resolve();
    },
  };
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) {
        server.forceShutdown();
        reject(error);
      } else {
        resolve(port);
      }
    });
  });
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
