// One channel per key, never a new channel because a call failed, and what stats() reports.
import * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { ChannelPool, CircuitOpenError, StatusError } from '../../src/index.js';
import { channelzChannels, closedPort } from '../helpers/net.js';
import { TestServiceClient, UserServiceClient, testServiceDefinition } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let pool: ChannelPool;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  pool = fixture.newPool({ deadlineMs: 5_000 });
});

describe('one channel per key', () => {
  it('shares one channel between three clients of one target', async () => {
    const a = pool.client(TestServiceClient, server.address);
    const b = pool.client(UserServiceClient, server.address);
    const c = pool.client(testServiceDefinition, server.address);
    await Promise.all([a.Echo({ message: 'a' }), b.QueryBasicInfoByID({ id: 1 }), c.echo({ message: 'c' })]);

    const stats = pool.stats();
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({ target: server.address, state: 'ready', started: 3, succeeded: 3, failed: 0, inFlight: 0 });
    expect(await channelzChannels(server.address)).toBe(1);
  });

  it('opens one channel per target', async () => {
    const other = await startTestServer();
    try {
      await pool.client(TestServiceClient, server.address).Echo({ message: 'x' });
      await pool.client(TestServiceClient, other.address).Echo({ message: 'y' });
      await pool.client(UserServiceClient, other.address).QueryBasicInfoByID({ id: 2 });
      expect(pool.stats().channels).toBe(2);
      expect(
        pool
          .stats()
          .perChannel.map((c) => c.target)
          .sort(),
      ).toEqual([server.address, other.address].sort());
    } finally {
      await other.kill();
    }
  });

  it('never mixes different TLS credentials, nor TLS with insecure, on one target', () => {
    const tlsA = grpc.credentials.createSsl();
    const tlsB = grpc.credentials.createSsl();
    pool.client(TestServiceClient, server.address, { credentials: tlsA });
    pool.client(TestServiceClient, server.address, { credentials: tlsB });
    pool.client(TestServiceClient, server.address, { credentials: tlsA });
    pool.client(TestServiceClient, server.address); // insecure by default
    const stats = pool.stats();
    expect(stats.channels).toBe(3);
    expect(stats.perChannel.map((c) => c.secure).sort()).toEqual([false, true, true]);
  });

  it('shares a channel between insecure credentials objects, which grpc-js holds equal', async () => {
    for (let i = 0; i < 5; i++) {
      await pool.client(TestServiceClient, server.address, { credentials: grpc.credentials.createInsecure() }).Echo({ message: `${i}` });
    }
    expect(pool.stats().channels).toBe(1);
  });

  it('keys channels by channel options, whatever their order', () => {
    const a = { 'grpc.keepalive_time_ms': 30_000, 'grpc.max_receive_message_length': 1 << 20 };
    const b = { 'grpc.max_receive_message_length': 1 << 20, 'grpc.keepalive_time_ms': 30_000 };
    pool.client(TestServiceClient, server.address, { channelOptions: a });
    pool.client(TestServiceClient, server.address, { channelOptions: b });
    expect(pool.stats().channels).toBe(1);
    pool.client(TestServiceClient, server.address, { channelOptions: { ...a, 'grpc.keepalive_time_ms': 60_000 } });
    expect(pool.stats().channels).toBe(2);
  });

  it('applies pool channel options and lets a client override them', async () => {
    const tuned = new ChannelPool({ channelOptions: { 'grpc.max_receive_message_length': 16 } });
    try {
      const small = tuned.client(TestServiceClient, server.address);
      const large = tuned.client(TestServiceClient, server.address, { channelOptions: { 'grpc.max_receive_message_length': 1 << 20 } });
      const error = await small.Echo({ message: 'x'.repeat(64) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StatusError);
      expect((error as StatusError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      await expect(large.Echo({ message: 'x'.repeat(64) })).resolves.toMatchObject({ message: 'x'.repeat(64) });
      expect(tuned.stats().channels).toBe(2);
    } finally {
      await tuned.close({ graceMs: 0 });
    }
  });
});

describe('failed calls never create channels', () => {
  it('keeps one channel through 10,000 failed calls to a port where nothing listens', async () => {
    const target = `127.0.0.1:${await closedPort()}`;
    const users = pool.client(UserServiceClient, target, { deadlineMs: 2_000 });
    const codes = new Map<number, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 10_000) {
        next++;
        const error = await users.QueryBasicInfoByID({ id: next }).then(
          () => undefined,
          (e: unknown) => e,
        );
        // The breaker opens once the failures pass its threshold: later calls fail fast.
        expect(error instanceof StatusError || error instanceof CircuitOpenError).toBe(true);
        const code = (error as StatusError | CircuitOpenError).code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));

    expect([...codes.keys()].every((c) => c === grpc.status.UNAVAILABLE || c === grpc.status.DEADLINE_EXCEEDED)).toBe(true);
    expect([...codes.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
    const stats = pool.stats();
    expect(stats.channels).toBe(1);
    expect(stats.channelsCreated).toBe(1);
    expect(stats.perChannel[0]).toMatchObject({ started: 10_000, failed: 10_000, succeeded: 0, inFlight: 0 });
    // Independent of our own counters: grpc-js's channelz lists every unclosed channel.
    expect(await channelzChannels(target)).toBe(1);
  });

  it('reconnects on the same channel when the backend comes back', async () => {
    const port = server.port;
    const users = pool.client(UserServiceClient, server.address, {
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 200 },
    });
    await users.QueryBasicInfoByID({ id: 1 });
    await server.kill();
    await expect(users.QueryBasicInfoByID({ id: 2 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });

    server = await startTestServer({ port });
    onTestFinished(() => server.kill());
    let reply: unknown;
    for (let attempt = 0; attempt < 50 && reply === undefined; attempt++) {
      reply = await users.QueryBasicInfoByID({ id: 3 }).catch(() => new Promise((r) => setTimeout(r, 100)).then(() => undefined));
    }
    expect(reply).toMatchObject({ id: 3, name: 'user-3' });
    expect(pool.stats()).toMatchObject({ channels: 1, channelsCreated: 1 });
  });
});

describe('stats()', () => {
  it('returns a fresh snapshot that counts calls in flight', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const before = pool.stats();
    const slow = echo.Echo({ message: 'slow', delayMs: 300 });
    const during = pool.stats();
    expect(during).not.toBe(before);
    expect(during.inFlight).toBe(1);
    expect(during.perChannel[0]).toMatchObject({ inFlight: 1, started: 1 });
    await slow;
    expect(pool.stats().inFlight).toBe(0);
    // Earlier snapshots are not live views.
    expect(before.perChannel[0]).toMatchObject({ inFlight: 0, started: 0 });
    expect(during.perChannel[0]).toMatchObject({ inFlight: 1, succeeded: 0 });
  });

  it('reads the connectivity state without connecting', () => {
    pool.client(TestServiceClient, server.address);
    for (let i = 0; i < 3; i++) expect(pool.stats().perChannel[0]!.state).toBe('idle');
    expect(server.calls).toHaveLength(0);
  });

  it('counts failures and successes per channel', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    await echo.Echo({ message: 'ok' });
    await echo.Echo({ message: 'no' }, { metadata: { 'x-fail-code': String(grpc.status.NOT_FOUND) } }).catch(() => undefined);
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 2, succeeded: 1, failed: 1 });
  });
});
