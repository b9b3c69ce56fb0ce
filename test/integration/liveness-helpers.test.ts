// Self-test of the liveness test peers: the gRFC A8 enforcing proxy and the fault proxy's
// freeze, driven by raw node:http2 sessions and raw grpc-js clients (nothing from the library).
import { once } from 'node:events';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startA8Peer, type A8Peer, type A8PeerOptions } from '../helpers/a8-peer.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient, type EchoResponse } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(): Promise<TestServer> {
  const started = await startTestServer();
  cleanups.push(() => started.kill());
  return started;
}

async function a8Peer(options: A8PeerOptions = {}): Promise<A8Peer> {
  const upstream = await server();
  const peer = await startA8Peer({ port: upstream.port }, options);
  cleanups.push(() => peer.close());
  return peer;
}

async function session(address: string): Promise<http2.ClientHttp2Session> {
  const opened = http2.connect(`http://${address}`);
  opened.on('error', () => {});
  cleanups.push(() => opened.destroy());
  // A ping queued before the handshake is cancelled by node:http2 on some versions.
  await once(opened, 'connect');
  return opened;
}

function ping(on: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    on.ping((error) => (error ? reject(error) : resolve()));
  });
}

/** A gRPC request for a method the server lacks: it answers at once with a trailers-only HEADERS. */
async function unimplementedCall(on: http2.ClientHttp2Session): Promise<void> {
  const stream = on.request({
    ':method': 'POST',
    ':path': '/no.Such/Method',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.end();
  stream.resume();
  await once(stream, 'close');
}

function echo(client: grpc.Client, deadlineMs: number): Promise<EchoResponse> {
  return new Promise((resolve, reject) => {
    const method = (client as unknown as Record<string, (...args: unknown[]) => unknown>).Echo!;
    method.call(
      client,
      { message: 'hi' },
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, response: EchoResponse) => (error ? reject(error) : resolve(response)),
    );
  });
}

function client(address: string): grpc.Client {
  const created = new TestServiceClient(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
  cleanups.push(() => created.close());
  return created;
}

describe('A8 peer', () => {
  it('forwards gRPC calls and counts connections and frames', async () => {
    const peer = await a8Peer();
    const raw = client(peer.address);
    await echo(raw, 5_000);
    await echo(raw, 5_000);
    expect(peer.counters()).toMatchObject({ connections: 1, clientHeaders: 2, goaways: 0 });
    // Each answer: response HEADERS, one DATA (the message), trailers HEADERS.
    expect(peer.serverHeaders).toBe(4);
    expect(peer.serverData).toBeGreaterThanOrEqual(2);
  });

  it('answers the third bad ping with GOAWAY ENHANCE_YOUR_CALM too_many_pings and closes', async () => {
    const peer = await a8Peer();
    const h2 = await session(peer.address);
    const goaway = once(h2, 'goaway') as Promise<[number, number, Buffer]>;
    // (events.once would reject on the session 'error' that follows the GOAWAY.)
    const closed = new Promise((resolve) => h2.once('close', resolve));
    await ping(h2); // the first ping of a connection is fine
    await ping(h2); // strike 1
    await ping(h2); // strike 2
    expect(peer.counters()).toMatchObject({ pings: 3, badPings: 2, goaways: 0 });
    void ping(h2).catch(() => {}); // strike 3: too many
    const [code, , data] = await goaway;
    expect(code).toBe(0xb);
    expect(data.toString()).toBe('too_many_pings');
    await closed;
    expect(peer.counters()).toMatchObject({ pings: 4, badPings: 3, goaways: 1 });
  });

  it('never counts a ping that follows server HEADERS or DATA, and resets the strikes', async () => {
    const peer = await a8Peer();
    const h2 = await session(peer.address);
    await ping(h2);
    await ping(h2); // strike 1
    await unimplementedCall(h2); // the server writes HEADERS
    await ping(h2); // reset, not a strike
    await ping(h2); // strike 1
    await ping(h2); // strike 2
    expect(peer.counters()).toMatchObject({ pings: 5, badPings: 3, goaways: 0 });
    await unimplementedCall(h2);
    await ping(h2);
    expect(peer.counters()).toMatchObject({ pings: 6, badPings: 3, goaways: 0 });
  });

  it('counts nothing as bad when pings keep to minPingIntervalMs (0 here) while a stream is open', async () => {
    const peer = await a8Peer({ minPingIntervalMs: 0 });
    const h2 = await session(peer.address);
    // A bidi call left open: the stream counts as active, so the 2-hour idle rule does not apply.
    const stream = h2.request({
      ':method': 'POST',
      ':path': '/resilient.test.v1.TestService/Bidi',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.resume();
    // Open once the peer has seen its HEADERS (not after a set time, which a loaded machine stretches).
    await expect.poll(() => peer.counters().clientHeaders, { timeout: 10_000 }).toBe(1);
    for (let i = 0; i < 5; i += 1) await ping(h2);
    expect(peer.counters()).toMatchObject({ pings: 5, badPings: 0, goaways: 0 });
    stream.close();
  });
});

describe('fault proxy: freezeEstablished()', () => {
  it('silences open connections without FIN or RST while new connections pass', async () => {
    const upstream = await server();
    const proxy = await startFaultProxy({ port: upstream.port });
    cleanups.push(() => proxy.close());
    const first = client(proxy.address);
    await echo(first, 5_000);
    expect(proxy.freezeEstablished()).toBe(1);
    expect(proxy.frozen).toBe(1);
    const before = upstream.calls.length;

    await expect(echo(first, 500)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    // Nothing reached the server, and the client still believes in its connection.
    expect(upstream.calls.length).toBe(before);
    expect(first.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.READY);

    const second = client(proxy.address);
    await expect(echo(second, 5_000)).resolves.toMatchObject({ message: 'hi' });
    expect(proxy.accepted).toBe(2);
    expect(proxy.live).toBe(2);
  });
});
