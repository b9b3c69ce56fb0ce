// The unary Echo contenders, set up in ONE place for every benchmark that compares them (the
// unary overhead, instructions per call and multi-target benchmarks): raw grpc-js through its
// callback API, resilient-grpc's ChannelPool, and nice-grpc with its deadline and retry
// middlewares. Each takes a list of targets and spreads its calls over them in turn (one
// client, and so one channel, per target); with one target, the call path has no indexing.
import * as grpc from '@grpc/grpc-js';
import { createChannel, createClientFactory } from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { retryMiddleware } from 'nice-grpc-client-middleware-retry';
import { TestServiceClient, testServiceDefinition } from '../test/helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../test/helpers/protos.js';
import { promiseCall, type StartCall } from './lib.js';
import type { ChannelPool as ChannelPoolClass, ChannelPoolOptions, ClientOptions } from '../src/index.js';

export const DEADLINE_MS = 10_000;
export const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

export const RAW = 'raw grpc-js';
export const CONTROL = 'raw grpc-js again (A/A control)';
export const RAW_NO_STACK = 'raw grpc-js, caller stack off';
export const RAW_PROMISE = 'raw grpc-js, caller stack off, promise';
export const RESILIENT = 'resilient-grpc';
export const NICE = 'nice-grpc';

/** The raw grpc-js callback client's Echo (the loaded constructor is untyped). */
export interface RawTestClient extends grpc.Client {
  Echo(
    request: EchoRequest,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: EchoResponse) => void,
  ): grpc.ClientUnaryCall;
}

/** testServiceDefinition, typed for nice-grpc (the loaded one is untyped; the object is the same). */
const echoDefinition = testServiceDefinition as unknown as {
  Echo: grpc.MethodDefinition<EchoRequest, EchoResponse> & { requestStream: false; responseStream: false };
};

/** One contender, built: how to start a call, a check that every target answers, and cleanup. */
export interface EchoContender {
  name: string;
  start: StartCall;
  /** One call per target (deadline `deadlineMs`, default DEADLINE_MS); rejects unless each answers the Echo. */
  check(deadlineMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Runs `start` (a grpc-js call) as resilient-grpc makes its calls: grpc-js captures no caller stack (its new Error() per call). */
function withoutCallerStack(start: () => void): void {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    start();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Starts each call on the next of `items`, in turn; with one item, on it with no indexing. */
function rotate<T>(items: readonly T[], make: (item: T) => StartCall): StartCall {
  if (items.length === 0) throw new Error('no targets');
  if (items.length === 1) return make(items[0]!);
  const starts = items.map(make);
  let next = 0;
  return (done) => {
    const start = starts[next]!;
    next = next + 1 === starts.length ? 0 : next + 1;
    start(done);
  };
}

async function checkAll(name: string, calls: ReadonlyArray<() => Promise<unknown>>): Promise<void> {
  for (const call of calls) {
    const response = (await call()) as EchoResponse;
    if (response.message !== REQUEST.message) throw new Error(`${name}: unexpected response ${JSON.stringify(response)}`);
  }
}

/**
 * Raw grpc-js: the generated-style callback client (one per target, each with its own channel),
 * a deadline on each call (`deadlineMs`, default DEADLINE_MS). The baseline of every comparison. Named RAW_NO_STACK, it makes its
 * calls with Error.stackTraceLimit at 0, as resilient-grpc does: grpc-js then captures no caller
 * stack, and what is left of the gap to it is the pool's own work.
 */
export function rawEcho(targets: readonly string[], name = RAW, channelOptions: grpc.ChannelOptions = {}, deadlineMs = DEADLINE_MS): EchoContender {
  const clients = targets.map((t) => new TestServiceClient(t, grpc.credentials.createInsecure(), channelOptions) as unknown as RawTestClient);
  const callerStack = name !== RAW_NO_STACK;
  return {
    name,
    start: rotate(clients, (raw) =>
      callerStack
        ? (done) => {
            raw.Echo(REQUEST, { deadline: Date.now() + deadlineMs }, (error) => done(error === null ? undefined : error));
          }
        : (done) =>
            withoutCallerStack(() =>
              raw.Echo(REQUEST, { deadline: Date.now() + deadlineMs }, (error) => done(error === null ? undefined : error)),
            ),
    ),
    check: (checkDeadlineMs = deadlineMs) =>
      checkAll(
        name,
        clients.map((raw) => () => new Promise((resolve, reject) => raw.Echo(REQUEST, { deadline: Date.now() + checkDeadlineMs }, (e, r) => (e ? reject(e) : resolve(r))))),
      ),
    async close() {
      for (const raw of clients) raw.close();
    },
  };
}

/**
 * Raw grpc-js as resilient-grpc uses it: the caller stack off, and each call a promise settled by
 * the callback (as a promisified client). Beside it, resilient-grpc's ratio leaves out what any
 * promise API and the caller stack cost: what is left is the pool's own work.
 */
export function rawPromiseEcho(targets: readonly string[], name = RAW_PROMISE): EchoContender {
  const clients = targets.map((t) => new TestServiceClient(t, grpc.credentials.createInsecure()) as unknown as RawTestClient);
  const calls = clients.map(
    (raw) => (): Promise<EchoResponse> =>
      new Promise((resolve, reject) =>
        withoutCallerStack(() =>
          raw.Echo(REQUEST, { deadline: Date.now() + DEADLINE_MS }, (error, response) => (error === null ? resolve(response!) : reject(error))),
        ),
      ),
  );
  return {
    name,
    start: rotate(calls, promiseCall),
    check: async () => {
      for (const call of calls) await call();
    },
    async close() {
      for (const raw of clients) raw.close();
    },
  };
}

/** resilient-grpc: one pool (`options`), one client per target (so one channel per target), each with `clientOptions`. */
export function resilientEcho(
  ChannelPool: typeof ChannelPoolClass,
  targets: readonly string[],
  options: ChannelPoolOptions = {},
  name = RESILIENT,
  clientOptions: ClientOptions = {},
): EchoContender & { pool: ChannelPoolClass } {
  const pool = new ChannelPool(options);
  const clients = targets.map((t) => pool.client(TestServiceClient, t, clientOptions));
  const calls = clients.map((client) => (): Promise<EchoResponse> => client.Echo(REQUEST) as Promise<EchoResponse>);
  return {
    name,
    pool,
    start: rotate(calls, promiseCall),
    check: (deadlineMs = DEADLINE_MS) =>
      checkAll(
        name,
        clients.map((client) => () => client.Echo(REQUEST, { deadlineMs }) as Promise<EchoResponse>),
      ),
    async close() {
      await pool.close({ graceMs: 0 });
    },
  };
}

/**
 * nice-grpc with its deadline and retry middlewares (one channel per target; `deadlineMs`, default DEADLINE_MS). The middleware
 * attached last runs first: the deadline wraps every attempt, as resilient-grpc's does.
 * retryMaxAttempts counts retries (nice-grpc stops once attempt index >= retryMaxAttempts): 2
 * means 3 attempts in all, as resilient-grpc's default maxAttempts 3.
 */
export function niceEcho(targets: readonly string[], name = NICE, deadlineMs = DEADLINE_MS): EchoContender {
  const factory = createClientFactory().use(retryMiddleware).use(deadlineMiddleware);
  const options = { deadline: deadlineMs, retry: true, retryMaxAttempts: 2 };
  const channels = targets.map((t) => createChannel(t));
  const clients = channels.map((channel) => factory.create(echoDefinition, channel));
  const calls = clients.map((client) => (): Promise<EchoResponse> => client.Echo(REQUEST, options));
  return {
    name,
    start: rotate(calls, promiseCall),
    check: (checkDeadlineMs = deadlineMs) =>
      checkAll(
        name,
        clients.map((client) => () => client.Echo(REQUEST, { ...options, deadline: checkDeadlineMs })),
      ),
    async close() {
      for (const channel of channels) channel.close();
    },
  };
}

/** The nice-grpc options, for notes. */
export const NICE_OPTIONS_NOTE = `deadline ${DEADLINE_MS} ms (middleware timer), retry: true, retryMaxAttempts: 2 (3 attempts)`;
