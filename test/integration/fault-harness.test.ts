// Self-test of the fault harness the partial-outage benchmark and the endpoint tests use: the
// fault proxy's freeze really stops the bytes (counted both ways) while its stream counter still
// sees the attempts sent into the frozen connection, and a server process paused with SIGSTOP
// keeps its connection open and answers nothing until resumed. Raw grpc-js clients only.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TestServiceClient, type EchoResponse } from '../helpers/protos.js';
import { startTestServerProcess } from '../helpers/test-server-process.js';
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

function client(address: string): grpc.Client {
  // A local subchannel pool: two clients of one address get two connections.
  const created = new TestServiceClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  cleanups.push(() => created.close());
  return created;
}

function echo(on: grpc.Client, message: string, deadlineMs: number): Promise<EchoResponse> {
  return new Promise((resolve, reject) => {
    const method = (on as unknown as Record<string, (...args: unknown[]) => unknown>).Echo!;
    method.call(
      on,
      { message },
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, response: EchoResponse) => (error ? reject(error) : resolve(response)),
    );
  });
}

describe('fault proxy counters', () => {
  it('a frozen connection forwards no byte either way; its attempts are counted as streams; a new connection passes', async () => {
    const upstream = await server();
    const proxy = await startFaultProxy({ port: upstream.port }, { countStreams: true });
    cleanups.push(() => proxy.close());
    const first = client(proxy.address);

    await expect(echo(first, 'one', 5_000)).resolves.toMatchObject({ message: 'one' });
    await expect(echo(first, 'two', 5_000)).resolves.toMatchObject({ message: 'two' });
    expect(proxy.streams).toBe(2);
    expect(proxy.bytesDropped).toBe(0);
    const forwardedBeforeFreeze = proxy.bytesForwarded;
    expect(forwardedBeforeFreeze).toBeGreaterThan(0);
    const callsBeforeFreeze = upstream.calls.length;

    expect(proxy.freezeEstablished()).toBe(1);
    await expect(echo(first, 'lost', 500)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    // The attempt left the client (dropped bytes, one more stream) and nothing crossed.
    await expect.poll(() => proxy.streams).toBe(3);
    expect(proxy.bytesDropped).toBeGreaterThan(0);
    expect(proxy.bytesForwarded).toBe(forwardedBeforeFreeze);
    expect(upstream.calls.length).toBe(callsBeforeFreeze);

    const second = client(proxy.address);
    await expect(echo(second, 'fresh', 5_000)).resolves.toMatchObject({ message: 'fresh' });
    expect(proxy.streams).toBe(4);
    expect(proxy.bytesForwarded).toBeGreaterThan(forwardedBeforeFreeze);
    expect(upstream.calls.length).toBe(callsBeforeFreeze + 1);
  });

  it('counts no streams unless asked to', async () => {
    const upstream = await server();
    const proxy = await startFaultProxy({ port: upstream.port });
    cleanups.push(() => proxy.close());
    await expect(echo(client(proxy.address), 'hi', 5_000)).resolves.toMatchObject({ message: 'hi' });
    expect(proxy.streams).toBe(0);
    expect(proxy.bytesForwarded).toBeGreaterThan(0);
  });
});

describe('test server process: pause() / resume()', () => {
  // Room for the child's start-up limit (60 s on a loaded runner) and the test's own work.
  it('a paused server keeps its connection and answers nothing; resumed, it serves again', { timeout: 90_000 }, async () => {
    const child = await startTestServerProcess();
    cleanups.push(() => child.kill());
    expect(child.pid).not.toBe(process.pid);
    const proxy = await startFaultProxy({ port: child.port }, { countStreams: true });
    cleanups.push(() => proxy.close());
    const via = client(proxy.address);
    await expect(echo(via, 'before', 30_000)).resolves.toMatchObject({ message: 'before' });

    child.pause();
    expect(child.paused).toBe(true);
    await expect(echo(via, 'stopped', 1_000)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    // The attempt went out on the same connection, which no one closed.
    await expect.poll(() => proxy.streams).toBe(2);
    expect(proxy.accepted).toBe(1);
    expect(proxy.live).toBe(1);
    expect(via.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.READY);

    child.resume();
    expect(child.paused).toBe(false);
    await expect(echo(via, 'after', 30_000)).resolves.toMatchObject({ message: 'after' });
    expect(proxy.accepted).toBe(1);
  });

  it('kill() ends a paused server', { timeout: 90_000 }, async () => {
    const child = await startTestServerProcess();
    cleanups.push(() => child.kill());
    child.pause();
    await child.kill();
    expect(child.paused).toBe(false);
    // A server still alive but stopped would have the kernel accept this connection.
    const socket = net.connect({ host: '127.0.0.1', port: child.port });
    cleanups.push(() => socket.destroy());
    const outcome = await new Promise<string | undefined>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
    });
    expect(outcome).toBe('ECONNREFUSED');
  });
});
