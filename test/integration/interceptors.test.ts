// grpc-js interceptors through the pool, end to end against real servers: an auth interceptor
// whose header the server checks, a logging interceptor that sees every attempt (and never the
// pool's internal attempt header), and interceptors that fail the call. The pool's own
// behaviour stays: a finite deadline on the wire, the commit rule, endpoint picking.
//
// What an interceptor that fails a call gets, by definition:
//   - it ends the call with a status of its own, without handing it on: the call fails with
//     that status (a StatusError with the interceptor's code), after one attempt, whatever the
//     retry policy says: the interceptor decided, and the backend was never asked, so the
//     circuits and the endpoint books do not count it either;
//   - it throws: the call fails with INTERNAL, "an interceptor threw: ...", the thrown error as
//     its cause, after one attempt;
//   - it lets the call through and the server fails it: retried as any failure is, and the
//     interceptors run again on the retry.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { startFleet, type Fleet } from '../helpers/endpoint-fleet.js';
import { TestServiceClient, testServiceDefinition, type EchoRequest, type EchoResponse } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

const ATTEMPT_HEADER = 'x-resilient-grpc-attempt';
const GOOD_TOKEN = 'Bearer good-token';

/** Adds the header the auth server checks. */
function authInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', token);
        next(metadata, listener);
      },
    });
}

interface Logged {
  method: string;
  deadline: grpc.Deadline | undefined;
  headers: Record<string, unknown>;
  status?: number;
}

/** Records what every attempt looks like from inside an interceptor: what a logging interceptor prints. */
function loggingInterceptor(log: Logged[]): grpc.Interceptor {
  return (options, nextCall) => {
    const entry: Logged = { method: options.method_definition.path, deadline: options.deadline, headers: {} };
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        entry.headers = metadata.getMap();
        log.push(entry);
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            entry.status = status.code;
            nextStatus(status);
          },
        });
      },
    });
  };
}

/** Ends every call at once with `code`, without handing it on. */
function refusingInterceptor(code: grpc.status, details: string, counter: { calls: number }): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(_metadata, listener) {
        counter.calls++;
        listener.onReceiveStatus({ code, details, metadata: new grpc.Metadata() });
      },
    });
}

// ---------------------------------------------------------------------------------------------
// An Echo server that checks the authorization header (UNAUTHENTICATED without the right one)
// and records what it received.

interface Received {
  headers: Record<string, unknown>;
  deadline: number;
}

interface AuthServer {
  address: string;
  received: Received[];
  close(): void;
}

async function startAuthServer(): Promise<AuthServer> {
  const server = new grpc.Server();
  const received: Received[] = [];
  server.addService(testServiceDefinition, {
    Echo(call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) {
      const deadline = call.getDeadline();
      received.push({ headers: call.metadata.getMap(), deadline: deadline instanceof Date ? deadline.getTime() : deadline });
      if (call.metadata.get('authorization')[0] !== GOOD_TOKEN) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'no valid token' });
        return;
      }
      // Committed, then failed: response headers first (gRFC A6), then UNAVAILABLE.
      if (call.metadata.get('x-headers-then-fail').length > 0) {
        call.sendMetadata(new grpc.Metadata());
        callback({ code: grpc.status.UNAVAILABLE, details: 'failed after its headers' });
        return;
      }
      callback(null, { message: call.request.message, deadlineMs: 0, count: received.length, payload: Buffer.alloc(0) });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, received, close: () => server.forceShutdown() };
}

let auth: AuthServer;
let pool: ChannelPool;

beforeEach(async () => {
  auth = await startAuthServer();
  pool = new ChannelPool({ deadlineMs: 10_000 });
});

afterEach(async () => {
  await pool.close({ graceMs: 0 });
  auth.close();
});

function failure(promise: Promise<unknown>): Promise<StatusError> {
  return promise.then(
    (value) => expect.fail(`expected a failure, got ${JSON.stringify(value)}`),
    (error: unknown) => {
      expect(error).toBeInstanceOf(StatusError);
      return error as StatusError;
    },
  );
}

describe('an auth interceptor', () => {
  it('on the client: every call carries the header the server checks', async () => {
    const echo = pool.client(TestServiceClient, auth.address, { interceptors: [authInterceptor(GOOD_TOKEN)] });
    await expect(echo.Echo({ message: 'one' })).resolves.toMatchObject({ message: 'one' });
    await expect(echo.echo({ message: 'two' })).resolves.toMatchObject({ message: 'two' });
    expect(auth.received.map((r) => r.headers.authorization)).toEqual([GOOD_TOKEN, GOOD_TOKEN]);
  });

  it('without it the server refuses the call: UNAUTHENTICATED, not retried', async () => {
    const echo = pool.client(TestServiceClient, auth.address);
    const error = await failure(echo.Echo({ message: 'anonymous' }));
    expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(error.attempts).toBe(1);
    expect(auth.received).toHaveLength(1);
  });

  it("per call, interceptors replace the client's (as in grpc-js); an empty list keeps the client's", async () => {
    const echo = pool.client(TestServiceClient, auth.address, { interceptors: [authInterceptor(GOOD_TOKEN)] });
    const replaced = await failure(echo.Echo({ message: 'x' }, { interceptors: [authInterceptor('Bearer stale')] }));
    expect(replaced.code).toBe(grpc.status.UNAUTHENTICATED);
    await expect(echo.Echo({ message: 'kept' }, { interceptors: [] })).resolves.toMatchObject({ message: 'kept' });
    expect(auth.received.map((r) => r.headers.authorization)).toEqual(['Bearer stale', GOOD_TOKEN]);
  });

  it('from interceptor_providers, on the client (asked once per method) and per call', async () => {
    const asked: string[] = [];
    const provider: grpc.InterceptorProvider = (definition) => {
      asked.push(definition.path);
      return authInterceptor(GOOD_TOKEN);
    };
    const echo = pool.client(TestServiceClient, auth.address, { interceptor_providers: [provider] });
    await echo.Echo({ message: 'a' });
    await echo.Echo({ message: 'b' });
    // Once per method of the service when the client was made, not per call.
    expect(asked).toHaveLength(Object.keys(testServiceDefinition).length);
    expect(asked).toContain('/resilient.test.v1.TestService/Echo');

    const plain = pool.client(TestServiceClient, auth.address);
    await expect(plain.Echo({ message: 'c' }, { interceptor_providers: [provider] })).resolves.toMatchObject({ message: 'c' });
    expect(auth.received.map((r) => r.headers.authorization)).toEqual([GOOD_TOKEN, GOOD_TOKEN, GOOD_TOKEN]);
  });
});

describe('the pool behaves the same with interceptors', () => {
  it('the deadline reaches the wire, and the interceptor sees it in its options', async () => {
    const log: Logged[] = [];
    const echo = pool.client(TestServiceClient, auth.address, {
      interceptors: [loggingInterceptor(log), authInterceptor(GOOD_TOKEN)],
    });
    const before = Date.now();
    await echo.Echo({ message: 'timed' }, { deadlineMs: 4_000 });
    const after = Date.now();
    expect(log).toHaveLength(1);
    // The attempt's deadline is the call's: admitted between `before` and `after`, plus 4 s.
    expect(log[0]!.deadline).toBeGreaterThanOrEqual(before + 4_000);
    expect(log[0]!.deadline).toBeLessThanOrEqual(after + 4_000);
    expect(Number.isFinite(auth.received[0]!.deadline)).toBe(true);
    expect(auth.received[0]!.headers['grpc-timeout']).toBeUndefined(); // read by grpc-js, not a header the handler sees
  });

  it('the commit rule holds: a call that failed after its response headers is not retried', async () => {
    const log: Logged[] = [];
    const echo = pool.client(TestServiceClient, auth.address, {
      interceptors: [loggingInterceptor(log), authInterceptor(GOOD_TOKEN)],
      idempotent: true,
      retry: { maxAttempts: 4, initialDelayMs: 1 },
    });
    const error = await failure(echo.Echo({ message: 'once' }, { metadata: { 'x-headers-then-fail': '1' } }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.attempts).toBe(1);
    expect(auth.received).toHaveLength(1);
    expect(log.map((entry) => entry.status)).toEqual([grpc.status.UNAVAILABLE]);
  });
});

describe('a logging interceptor, on a target of two endpoints (one of them failing every call)', () => {
  let fleet: Fleet;

  beforeEach(async () => {
    fleet = await startFleet([grpc.status.UNAVAILABLE, 'healthy']);
  });

  afterEach(async () => {
    await pool.close({ graceMs: 0 });
    await fleet.close();
  });

  it('sees every attempt, retries included, and never the pool’s attempt header; retries avoid the failing endpoint', async () => {
    const log: Logged[] = [];
    const echo = pool.client(TestServiceClient, fleet.target, {
      interceptors: [loggingInterceptor(log)],
      retry: { maxAttempts: 3, initialDelayMs: 1 },
    });
    const [sick, healthy] = fleet.endpoints as [Fleet['endpoints'][0], Fleet['endpoints'][0]];
    const calls = 6;
    for (let i = 0; i < calls; i++) {
      await expect(echo.Echo({ message: `call ${i}` })).resolves.toMatchObject({ message: `call ${i}` });
    }
    // Every call succeeded on the healthy endpoint; every attempt that met the sick one was
    // retried, and the retry went to the healthy one (the picker got the attempt's token).
    expect(healthy.arrived).toBe(calls);
    expect(log).toHaveLength(calls + sick.arrived);
    expect(log.filter((entry) => entry.status === grpc.status.UNAVAILABLE)).toHaveLength(sick.arrived);
    const retries = log.filter((entry) => entry.headers['grpc-previous-rpc-attempts'] !== undefined);
    expect(retries).toHaveLength(sick.arrived);
    expect(retries.every((entry) => entry.headers['grpc-previous-rpc-attempts'] === '1')).toBe(true);

    // The attempt header: seen by no interceptor, received by no server.
    expect(log.filter((entry) => ATTEMPT_HEADER in entry.headers)).toEqual([]);
    for (const endpoint of fleet.endpoints) {
      expect(endpoint.server.calls.filter((call) => call.metadata.get(ATTEMPT_HEADER).length > 0)).toEqual([]);
    }
    // The endpoint books heard each attempt: the token reached the picker through the interceptors.
    const books = pool.stats().perChannel[0]!.endpoints;
    expect(books.find((e) => e.address === healthy.address)).toMatchObject({ attempts: calls, failures: 0 });
    expect(books.find((e) => e.address === sick.address)).toMatchObject({ attempts: sick.arrived, failures: sick.arrived });
  });
});

describe('an interceptor that fails the call', () => {
  let server: TestServer;

  beforeEach(async () => {
    const fixture = await startServerAndPools();
    server = fixture.server;
  });

  it('with a status of its own: the call fails with it, once, without reaching the server', async () => {
    const counter = { calls: 0 };
    const echo = pool.client(TestServiceClient, server.address, {
      interceptors: [refusingInterceptor(grpc.status.PERMISSION_DENIED, 'tenant not allowed', counter)],
    });
    const error = await failure(echo.Echo({ message: 'denied' }));
    expect(error).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'tenant not allowed', attempts: 1 });
    expect(counter.calls).toBe(1);
    expect(server.calls).toHaveLength(0);
  });

  it('with UNAVAILABLE of its own: not retried and not counted by the circuit, whatever the retry policy', async () => {
    const counter = { calls: 0 };
    const echo = pool.client(TestServiceClient, server.address, {
      interceptors: [refusingInterceptor(grpc.status.UNAVAILABLE, 'quota service down', counter)],
      idempotent: true,
      retry: { maxAttempts: 5, initialDelayMs: 1 },
      breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 },
    });
    for (let i = 0; i < 3; i++) {
      const error = await failure(echo.Echo({ message: 'x' }));
      expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'quota service down', attempts: 1 });
    }
    expect(counter.calls).toBe(3);
    expect(server.calls).toHaveLength(0);
    // The breaker would have opened on the first backend failure (volume 1, 1%): it heard none.
    const breakers = pool.stats().perChannel[0]!.breakers;
    expect(breakers.length).toBeGreaterThan(0);
    expect(breakers.map((b) => [b.state, b.opened, b.rejected])).toEqual(breakers.map(() => ['closed', 0, 0]));
  });

  it('by throwing: INTERNAL with the thrown error as its cause, once', async () => {
    const bug = new Error('token cache not initialised');
    const throwing: grpc.Interceptor = () => {
      throw bug;
    };
    const echo = pool.client(TestServiceClient, server.address, { interceptors: [throwing], retry: { maxAttempts: 5 } });
    const error = await failure(echo.Echo({ message: 'x' }));
    expect(error).toMatchObject({ code: grpc.status.INTERNAL, details: 'an interceptor threw: token cache not initialised', attempts: 1 });
    expect(error.cause).toBe(bug);
    expect(server.calls).toHaveLength(0);
  });

  it("by throwing in its start: the same, and the pool's later calls are unaffected", async () => {
    const throwingStart: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start() {
          throw new TypeError('bad header value');
        },
      });
    const echo = pool.client(TestServiceClient, server.address);
    const error = await failure(echo.Echo({ message: 'x' }, { interceptors: [throwingStart] }));
    expect(error).toMatchObject({ code: grpc.status.INTERNAL, details: 'an interceptor threw: bad header value', attempts: 1 });
    // Made inside the grpc-js call, the interceptor's error still has its stack: the frame where it was thrown.
    expect((error.cause as Error).stack).toContain('interceptors.test.ts');
    await expect(echo.Echo({ message: 'after' })).resolves.toMatchObject({ message: 'after' });
    expect(server.calls).toHaveLength(1);
  });

  it('on a server stream: the stream throws the StatusError of its status', async () => {
    const counter = { calls: 0 };
    const stream = pool.client(TestServiceClient, server.address).ServerStream(
      { message: 's', count: 3, intervalMs: 0, failCode: 0 },
      {
        interceptors: [refusingInterceptor(grpc.status.RESOURCE_EXHAUSTED, 'over quota', counter)],
      },
    );
    const error = await (async () => {
      for await (const _ of stream as AsyncIterable<unknown>) expect.fail('no message expected');
    })().then(
      () => expect.fail('expected the stream to fail'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, attempts: 1 });
    expect(server.calls).toHaveLength(0);
  });

  it('letting the call through when the server fails it: retried, and the interceptors run again', async () => {
    const log: Logged[] = [];
    const echo = pool.client(TestServiceClient, server.address, {
      interceptors: [loggingInterceptor(log)],
      retry: { maxAttempts: 3, initialDelayMs: 1 },
    });
    await expect(
      echo.Echo({ message: 'second time' }, { metadata: { 'x-call-id': 'retry-through', 'x-fail-times': '1' } }),
    ).resolves.toMatchObject({ message: 'second time' });
    expect(log.map((entry) => entry.status)).toEqual([grpc.status.UNAVAILABLE, grpc.status.OK]);
    expect(server.callsFor('retry-through')).toBe(2);
  });
});
