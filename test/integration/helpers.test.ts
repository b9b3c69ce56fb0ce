// Self-test of the test helpers (protos, scripted test server, fault proxy), driven by raw
// grpc-js clients so that nothing here depends on the library under test.
import { once } from 'node:events';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import {
  TestServiceClient,
  UserServiceClient,
  type BasicInfo,
  type EchoRequest,
  type EchoResponse,
  type StreamRequest,
} from '../helpers/protos.js';
import { startTestServerProcess } from '../helpers/test-server-process.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

// ---------------------------------------------------------------------------------------------
// Raw-client plumbing

const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  // Last registered first: clients close before the proxies and servers they talk to.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const started = await startTestServer(options);
  cleanups.push(() => started.kill());
  return started;
}

async function proxyTo(target: TestServer, options: Parameters<typeof startFaultProxy>[1] = {}): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ port: target.port }, options);
  cleanups.push(() => proxy.close());
  return proxy;
}

// A local subchannel pool keeps each client's connection to itself: grpc-js otherwise shares
// subchannels (and their reconnect backoff) between clients of the same address.
const ISOLATED: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 };

function client(address: string, Constructor = TestServiceClient): grpc.Client {
  const created = new Constructor(address, grpc.credentials.createInsecure(), ISOLATED);
  cleanups.push(() => created.close());
  return created;
}

/** A generated method of a client; noUncheckedIndexedAccess makes us look it up explicitly. */
function rpc<T>(target: grpc.Client, name: string): T {
  const fn = (target as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw new Error(`no method ${name}`);
  return fn.bind(target) as T;
}

type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

interface CallInput {
  metadata?: Record<string, string>;
  deadlineMs?: number;
}

interface UnaryResult<Res> {
  response: Res;
  trailers: grpc.Metadata;
}

function toMetadata(headers: Record<string, string> = {}): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
  return metadata;
}

function callOptions({ deadlineMs }: CallInput): grpc.CallOptions {
  return deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
}

function unary<Req, Res>(target: grpc.Client, method: string, request: Req, input: CallInput = {}): Promise<UnaryResult<Res>> {
  return new Promise((resolve, reject) => {
    let response: Res | undefined;
    const call = rpc<Unary<Req, Res>>(target, method)(request, toMetadata(input.metadata), callOptions(input), (error, value) => {
      if (error) reject(error);
      else response = value;
    });
    // Trailers arrive on 'status', after the callback has the response.
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK && response !== undefined) resolve({ response, trailers: status.metadata });
    });
  });
}

function echo(target: grpc.Client, message: string, input: CallInput = {}, delayMs = 0): Promise<UnaryResult<EchoResponse>> {
  const request: Partial<EchoRequest> = { message, delayMs };
  return unary<Partial<EchoRequest>, EchoResponse>(target, 'Echo', request, input);
}

/** Resolves with the error a call failed with; fails the test if the call succeeded. */
async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

function serverStream(target: grpc.Client, request: Partial<StreamRequest>, input: CallInput = {}) {
  type Open = (
    request: Partial<StreamRequest>,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ) => grpc.ClientReadableStream<EchoResponse>;
  return rpc<Open>(target, 'ServerStream')(request, toMetadata(input.metadata), callOptions(input));
}

/** Collects a server stream: every message received, and the error it ended with if any. */
async function collect(stream: grpc.ClientReadableStream<EchoResponse>) {
  const messages: EchoResponse[] = [];
  stream.on('data', (message: EchoResponse) => messages.push(message));
  const error = await new Promise<grpc.ServiceError | undefined>((resolve) => {
    stream.once('error', resolve);
    stream.once('end', () => resolve(undefined));
  });
  return { messages, error };
}

// ---------------------------------------------------------------------------------------------

describe('test server: unary scripting', () => {
  it('echoes and records the call', async () => {
    const srv = await server();
    const { response } = await echo(client(srv.address), 'hello', { metadata: { 'x-call-id': 'c1', foo: 'bar' } });

    expect(response).toMatchObject({ message: 'hello', count: 1, deadlineMs: 0 });
    expect(srv.calls).toHaveLength(1);
    expect(srv.calls[0]).toMatchObject({ method: 'Echo', callId: 'c1', cancelled: false, deadline: Infinity });
    expect(srv.calls[0]?.metadata.get('foo')).toEqual(['bar']);
    expect(srv.callsFor('c1')).toBe(1);
    expect(srv.address).toBe(`127.0.0.1:${srv.port}`);
  });

  it('delays by x-delay-ms and by EchoRequest.delayMs', async () => {
    const srv = await server();
    const c = client(srv.address);
    await echo(c, 'warm-up');

    let started = Date.now();
    await echo(c, 'header', { metadata: { 'x-delay-ms': '150' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);

    started = Date.now();
    await echo(c, 'body', {}, 150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
  });

  it('fails with x-fail-code and the scripted details', async () => {
    const srv = await server();
    const error = await failure(echo(client(srv.address), 'x', { metadata: { 'x-fail-code': '9' } }));

    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.details).toBe('scripted failure');
  });

  it('fails the first x-fail-times calls of one call id, then succeeds', async () => {
    const srv = await server();
    const c = client(srv.address);
    const metadata = { 'x-call-id': 'retry-me', 'x-fail-times': '2' };

    expect((await failure(echo(c, 'a', { metadata }))).code).toBe(grpc.status.UNAVAILABLE);
    const second = await failure(echo(c, 'a', { metadata: { ...metadata, 'x-fail-code': '8' } }));
    expect(second.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const { response } = await echo(c, 'a', { metadata });

    expect(response.count).toBe(3);
    expect(srv.callsFor('retry-me')).toBe(3);
    // Another call id has its own budget.
    expect((await failure(echo(c, 'b', { metadata: { ...metadata, 'x-call-id': 'other' } }))).code).toBe(grpc.status.UNAVAILABLE);
  });

  it('puts pushback and echo trailers on failures, and echo trailers on success', async () => {
    const srv = await server();
    const c = client(srv.address);
    const metadata = { 'x-fail-code': '14', 'x-pushback-ms': '-5', 'x-trailer-echo': 'bye' };

    const error = await failure(echo(c, 'x', { metadata }));
    expect(error.metadata.get('grpc-retry-pushback-ms')).toEqual(['-5']);
    expect(error.metadata.get('x-trailer-echo')).toEqual(['bye']);

    const { trailers } = await echo(c, 'x', { metadata: { 'x-pushback-ms': '100', 'x-trailer-echo': 'ok' } });
    expect(trailers.get('x-trailer-echo')).toEqual(['ok']);
    expect(trailers.get('grpc-retry-pushback-ms')).toEqual([]);
  });

  it('reports the deadline it observed', async () => {
    const srv = await server();
    const deadline = Date.now() + 5_000;
    const { response } = await echo(client(srv.address), 'x', { deadlineMs: 5_000 });

    // grpc-timeout travels as a relative duration: the server's deadline is never before the
    // client's (transit only moves it later), and never more than the 5 s budget after the call
    // arrived. No margin needed however loaded the machine; a missing deadline reads as 0, and
    // seconds read as ms are off by far more.
    expect(response.deadlineMs).toBeGreaterThanOrEqual(deadline);
    expect(response.deadlineMs - srv.calls[0]!.receivedAt).toBeLessThanOrEqual(5_000);
    expect(srv.calls[0]?.deadline).toBe(response.deadlineMs);
  });

  it('records cancellation when the deadline cuts a delayed call short', async () => {
    const srv = await server();
    const c = client(srv.address);
    // Connected first: the deadline cuts a call the server has, not a connection still being made
    // on a loaded machine.
    await echo(c, 'connect');
    const error = await failure(echo(c, 'x', { deadlineMs: 1_000, metadata: { 'x-delay-ms': '5000' } }));

    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await vi.waitFor(() => expect(srv.calls[1]?.cancelled).toBe(true), { timeout: 10_000 });
  });

  it('serves UserService.QueryBasicInfoByID with the same scripting', async () => {
    const srv = await server();
    const users = client(srv.address, UserServiceClient);
    const { response } = await unary<{ id: number }, BasicInfo>(users, 'QueryBasicInfoByID', { id: 42 });
    expect(response).toEqual({ id: 42, name: 'user-42', email: 'user42@example.test' });

    const error = await failure(unary(users, 'QueryBasicInfoByID', { id: 1 }, { metadata: { 'x-fail-code': '5' } }));
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(srv.calls.map((call) => call.method)).toEqual(['QueryBasicInfoByID', 'QueryBasicInfoByID']);
  });

  it('kill() cuts in-flight calls, and a new server can take over the same port', async () => {
    const first = await server();
    const c = client(first.address);
    const pending = failure(echo(c, 'x', { metadata: { 'x-delay-ms': '5000' } }));
    await vi.waitFor(() => expect(first.calls).toHaveLength(1), { timeout: 10_000 });

    await first.kill();
    await first.kill();
    // forceShutdown() resets streams with NGHTTP2_CANCEL: grpc-js reports CANCELLED when that
    // reset arrives before it notices the connection drop, UNAVAILABLE otherwise.
    expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain((await pending).code);
    expect(first.calls[0]?.cancelled).toBe(true);

    const second = await server({ port: first.port });
    const { response } = await echo(client(second.address), 'again');
    expect(response.message).toBe('again');
  });

  it('stop() waits for in-flight calls to finish', async () => {
    const srv = await server();
    const pending = echo(client(srv.address), 'slow', { metadata: { 'x-delay-ms': '150' } });
    await vi.waitFor(() => expect(srv.calls).toHaveLength(1), { timeout: 10_000 });

    await Promise.all([srv.stop(), srv.stop()]);
    expect((await pending).response.message).toBe('slow');
  });
});

describe('test server: streams', () => {
  it('server stream sends 1000 messages in order', async () => {
    const srv = await server();
    const { messages, error } = await collect(serverStream(client(srv.address), { message: 'm', count: 1000 }));

    expect(error).toBeUndefined();
    expect(messages).toHaveLength(1000);
    expect(messages.every((message, i) => message.count === i && message.message === `m-${i}`)).toBe(true);
  });

  it('server stream fails with failCode after its messages, spaced by intervalMs', async () => {
    const srv = await server();
    const started = Date.now();
    const { messages, error } = await collect(
      serverStream(client(srv.address), { message: 'm', count: 3, intervalMs: 50, failCode: grpc.status.ABORTED }),
    );

    expect(messages.map((message) => message.message)).toEqual(['m-0', 'm-1', 'm-2']);
    expect(error?.code).toBe(grpc.status.ABORTED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  });

  it('server stream honours x-fail-code at start and records cancellation', async () => {
    const srv = await server();
    const c = client(srv.address);
    const failed = await collect(serverStream(c, { message: 'm', count: 5 }, { metadata: { 'x-fail-code': '7' } }));
    expect(failed.messages).toEqual([]);
    expect(failed.error?.code).toBe(grpc.status.PERMISSION_DENIED);

    const stream = serverStream(c, { message: 'm', count: 1000, intervalMs: 10 });
    const done = collect(stream);
    await once(stream, 'data');
    stream.cancel();
    expect((await done).error?.code).toBe(grpc.status.CANCELLED);
    await vi.waitFor(() => expect(srv.calls[1]?.cancelled).toBe(true), { timeout: 10_000 });
  });

  it('client stream answers with the joined messages and their count', async () => {
    const srv = await server();
    type Open = (metadata: grpc.Metadata, callback: grpc.requestCallback<EchoResponse>) => grpc.ClientWritableStream<Partial<EchoRequest>>;
    const response = await new Promise<EchoResponse | undefined>((resolve, reject) => {
      const call = rpc<Open>(client(srv.address), 'ClientStream')(toMetadata({ 'x-delay-ms': '50' }), (error, value) =>
        error ? reject(error) : resolve(value),
      );
      for (const message of ['a', 'b', 'c']) call.write({ message });
      call.end();
    });

    expect(response).toMatchObject({ message: 'a,b,c', count: 3 });
  });

  it('bidi echoes each message as it arrives and ends with the client', async () => {
    const srv = await server();
    type Open = (metadata: grpc.Metadata) => grpc.ClientDuplexStream<Partial<EchoRequest>, EchoResponse>;
    const call = rpc<Open>(client(srv.address), 'Bidi')(new grpc.Metadata());
    const received: EchoResponse[] = [];
    call.on('data', (message: EchoResponse) => received.push(message));

    call.write({ message: 'one' });
    await once(call, 'data');
    call.write({ message: 'two' });
    call.end();
    await once(call, 'end');

    expect(received.map(({ message, count }) => [message, count])).toEqual([
      ['one', 0],
      ['two', 1],
    ]);
  });
});

describe('fault proxy', () => {
  it('passes calls through and counts connections', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv);
    const { response } = await echo(client(proxy.address), 'via proxy');

    expect(response.message).toBe('via proxy');
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.accepted).toBe(1);
    expect(proxy.live).toBe(1);
  });

  it('adds latency in both directions to an established connection', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv);
    const c = client(proxy.address);
    await echo(c, 'warm-up');

    // 300 ms each way: the round trip takes at least 600 ms, and the proxy held back chunks in
    // both directions.
    const latencyMs = 300;
    await proxy.setMode('latency', { latencyMs });
    const started = Date.now();
    const delayedBefore = proxy.delayedChunks;
    await echo(c, 'slow');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * latencyMs - 5);
    expect(proxy.delayedChunks - delayedBefore).toBeGreaterThanOrEqual(2);

    // Back to 'pass': nothing of the next round trip is held back (counted, not timed: a loaded
    // machine's round trip may well take 300 ms by itself).
    await proxy.setMode('pass');
    const delayedAfter = proxy.delayedChunks;
    await echo(c, 'fast');
    expect(proxy.delayedChunks).toBe(delayedAfter);
  });

  it('blackhole: the connection is accepted, the call hits its deadline', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv, { mode: 'blackhole' });
    const error = await failure(echo(client(proxy.address), 'x', { deadlineMs: 300 }));

    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(proxy.accepted).toBe(1);
    expect(proxy.live).toBe(1);
    expect(srv.calls).toHaveLength(0);
  });

  it('blackholeFirst: only the first connections are blackholed', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv, { blackholeFirst: 1 });

    expect((await failure(echo(client(proxy.address), 'x', { deadlineMs: 300 }))).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    const { response } = await echo(client(proxy.address), 'second connection');
    expect(response.message).toBe('second connection');
    expect(proxy.accepted).toBe(2);
  });

  it('reset: connections are aborted and calls fail UNAVAILABLE', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv, { mode: 'reset' });
    const error = await failure(echo(client(proxy.address), 'x', { deadlineMs: 1_000 }));

    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(proxy.accepted).toBeGreaterThanOrEqual(1);
  });

  it('refuse gives UNAVAILABLE; back to pass works on the same port', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv);
    const port = proxy.port;
    await proxy.setMode('refuse');

    const error = await failure(echo(client(proxy.address), 'x', { deadlineMs: 1_000 }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(proxy.accepted).toBe(0);

    await proxy.setMode('pass');
    expect(proxy.port).toBe(port);
    // A fresh client: the first one's connection is in reconnect backoff (about 1 s).
    const { response } = await echo(client(proxy.address), 'back');
    expect(response.message).toBe('back');
  });

  it('cutAll() mid server stream fails the stream on the client', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv);
    const stream = serverStream(client(proxy.address), { message: 'm', count: 1000, intervalMs: 5 });
    const done = collect(stream);
    await once(stream, 'data');

    proxy.cutAll();
    const { messages, error } = await done;
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.length).toBeLessThan(1000);
    await vi.waitFor(() => expect(srv.calls[0]?.cancelled).toBe(true), { timeout: 10_000 });
  });

  it('close() frees the port and drops every connection', async () => {
    const srv = await server();
    const proxy = await proxyTo(srv);
    const c = client(proxy.address);
    await echo(c, 'x');
    expect(proxy.live).toBe(1);

    await Promise.all([proxy.close(), proxy.close()]);
    expect(proxy.live).toBe(0);
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
  });
});

describe('test server in a child process', () => {
  // Room for the child's start-up limit (60 s on a loaded runner) and the test's own work.
  it('serves calls until killed', { timeout: 90_000 }, async () => {
    const child = await startTestServerProcess();
    cleanups.push(() => child.kill());
    const { response } = await echo(client(child.address), 'from afar');
    expect(response.message).toBe('from afar');

    await child.kill();
    const socket = net.connect({ host: '127.0.0.1', port: child.port });
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
  });
});
