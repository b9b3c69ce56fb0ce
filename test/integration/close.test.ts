// close(): refuse new calls, drain within graceMs, cancel the rest, release channels.
import * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, PoolClosedError, StatusError } from '../../src/index.js';
import { channelzChannels } from '../helpers/net.js';
import { TestServiceClient, UserServiceClient } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let pool: ChannelPool;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  pool = fixture.newPool({ deadlineMs: 10_000 });
});

function slowCalls(count: number, delayMs: number): Array<Promise<unknown>> {
  const echo = pool.client(TestServiceClient, server.address);
  return Array.from({ length: count }, (_, i) => echo.Echo({ message: `${i}`, delayMs }));
}

describe('close({ graceMs })', () => {
  it('lets 50 slow calls finish when the grace period is long enough', async () => {
    const calls = slowCalls(50, 300);
    await expect.poll(() => server.calls.length).toBe(50);
    const result = await pool.close({ graceMs: 5_000 });
    expect(result).toMatchObject({ drained: 50, cancelled: 0 });
    const settled = await Promise.allSettled(calls);
    expect(settled.every((s) => s.status === 'fulfilled')).toBe(true);
    expect(pool.stats()).toMatchObject({ state: 'closed', channels: 0, channelsClosed: 1, inFlight: 0 });
    expect(await channelzChannels(server.address)).toBe(0);
  });

  it('cancels the calls still running when the grace period ends', async () => {
    const calls = slowCalls(50, 5_000);
    await expect.poll(() => server.calls.length).toBe(50);
    const startedAt = performance.now();
    const result = await pool.close({ graceMs: 100 });
    const took = performance.now() - startedAt;
    // It gave the calls their grace period (less a timer's millisecond of rounding), and did not
    // wait for them (they would have answered after 5 s): each was cancelled before it answered.
    expect(took).toBeGreaterThanOrEqual(95);
    expect(result).toMatchObject({ drained: 0, cancelled: 50 });
    for (const outcome of await Promise.allSettled(calls)) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason as StatusError;
      expect(error).toBeInstanceOf(StatusError);
      expect(error.code).toBe(grpc.status.CANCELLED);
      expect(error.details).toMatch(/ChannelPool\.close\(\).*graceMs 100/);
    }
    // The cancellation reached the server: nothing keeps running there for 5 s.
    await expect.poll(() => server.calls.filter((c) => c.cancelled).length).toBe(50);
  });

  it('drains what finishes in time and cancels the rest', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const fast = Array.from({ length: 10 }, (_, i) => echo.Echo({ message: `fast-${i}`, delayMs: 100 }));
    const slow = Array.from({ length: 5 }, (_, i) => echo.Echo({ message: `slow-${i}`, delayMs: 5_000 }));
    await expect.poll(() => server.calls.length).toBe(15);
    expect(await pool.close({ graceMs: 1_000 })).toMatchObject({ drained: 10, cancelled: 5 });
    expect((await Promise.allSettled(fast)).map((s) => s.status)).toEqual(Array(10).fill('fulfilled'));
    expect((await Promise.allSettled(slow)).map((s) => s.status)).toEqual(Array(5).fill('rejected'));
  });

  it('cancels at once with graceMs 0', async () => {
    const calls = slowCalls(3, 5_000);
    await expect.poll(() => server.calls.length).toBe(3);
    expect(await pool.close({ graceMs: 0 })).toMatchObject({ drained: 0, cancelled: 3 });
    await expect(Promise.all(calls)).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });

  it('refuses calls after close without touching the network', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    await pool.close();
    const error = await echo.Echo({ message: 'late' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolClosedError);
    expect(error).toMatchObject({ code: grpc.status.CANCELLED, method: '/resilient.test.v1.TestService/Echo' });
    expect(server.calls).toHaveLength(0);
    expect(() => pool.client(UserServiceClient, server.address)).toThrow(PoolClosedError);
  });

  it('refuses calls while it is draining', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const slow = echo.Echo({ message: 'slow', delayMs: 300 });
    await expect.poll(() => server.calls.length).toBe(1);
    const closing = pool.close({ graceMs: 5_000 });
    expect(pool.state).toBe('closing');
    await expect(echo.Echo({ message: 'late' })).rejects.toBeInstanceOf(PoolClosedError);
    await expect(slow).resolves.toMatchObject({ message: 'slow' });
    await closing;
    expect(pool.state).toBe('closed');
    expect(server.calls).toHaveLength(1);
  });

  it('is idempotent: concurrent and later callers share one completion', async () => {
    const calls = slowCalls(5, 200);
    await expect.poll(() => server.calls.length).toBe(5);
    const first = pool.close({ graceMs: 5_000 });
    const second = pool.close({ graceMs: 0 }); // ignored: the first close is under way
    expect(second).toBe(first);
    const [a, b] = await Promise.all([first, second]);
    expect(a).toBe(b);
    expect(a).toMatchObject({ drained: 5, cancelled: 0 });
    expect(await pool.close()).toBe(a);
    await Promise.all(calls);
  });

  it('rejects a bad graceMs without closing, and the pool stays usable', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    for (const graceMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5000' as unknown as number]) {
      const error = await pool.close({ graceMs }).catch((e: unknown) => e);
      expect(error).toMatchObject({ option: 'graceMs', code: grpc.status.INVALID_ARGUMENT });
      expect((error as Error).message).toMatch(/graceMs/);
    }
    expect(pool.state).toBe('open');
    await expect(echo.Echo({ message: 'still open' })).resolves.toMatchObject({ message: 'still open' });
  });

  it('closes with await using', async () => {
    let inner: ChannelPool | undefined;
    {
      await using scoped = new ChannelPool();
      inner = scoped;
      await scoped.client(TestServiceClient, server.address).Echo({ message: 'scoped' });
      expect(scoped.state).toBe('open');
    }
    expect(inner.state).toBe('closed');
    expect(inner.stats().channels).toBe(0);
  });
});

describe('closeOnSignals()', () => {
  it('closes the pool on the signal and removes its handlers', async () => {
    const before = process.listenerCount('SIGUSR2');
    // Another listener keeps Node from re-raising the signal at the test runner.
    const keepAlive = (): void => {};
    process.on('SIGUSR2', keepAlive);
    try {
      pool.closeOnSignals(['SIGUSR2'], { graceMs: 1_000 });
      expect(process.listenerCount('SIGUSR2')).toBe(before + 2);
      const slow = pool.client(TestServiceClient, server.address).Echo({ message: 'slow', delayMs: 200 });
      await expect.poll(() => server.calls.length).toBe(1);
      process.kill(process.pid, 'SIGUSR2');
      await expect.poll(() => pool.state).not.toBe('open');
      await expect(slow).resolves.toMatchObject({ message: 'slow' });
      await expect.poll(() => pool.state).toBe('closed');
      expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    } finally {
      // The pool looks for other listeners one macrotask after closing, before re-raising.
      await new Promise((resolve) => setTimeout(resolve, 20));
      process.removeListener('SIGUSR2', keepAlive);
    }
  });

  it('can be removed, and removes itself when the pool closes another way', async () => {
    const before = process.listenerCount('SIGTERM');
    const handle = pool.closeOnSignals();
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    handle.remove();
    handle.remove();
    expect(process.listenerCount('SIGTERM')).toBe(before);

    pool.closeOnSignals();
    expect(process.listenerCount('SIGINT')).toBeGreaterThan(0);
    await pool.close();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });

  it('rejects bad signal lists and options', () => {
    expect(() => pool.closeOnSignals([] as NodeJS.Signals[])).toThrow(/signals must be/);
    expect(() => pool.closeOnSignals(['TERM' as NodeJS.Signals])).toThrow(/signals must be/);
    expect(() => pool.closeOnSignals(['SIGTERM'], { graceMs: 1, grace: 2 } as never)).toThrow(/CloseOptions\.grace/);
  });
});
