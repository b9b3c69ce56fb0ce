// Issue 12, deadlines: a per-attempt limit that cut committed streams, a stream deadline that
// started at the first next() instead of at the call, and a documented maximum deadline that
// failed at once.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startServerAndPools, type ServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let newPool: ServerAndPools['newPool'];
let pool: ChannelPool;

beforeEach(async () => {
  ({ server, newPool } = await startServerAndPools());
});

async function collect<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error?: unknown }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
    return { items };
  } catch (error) {
    return { items, error };
  }
}

describe('#12.6 perAttemptTimeoutMs does not cut a stream once it can no longer be retried', () => {
  it('#12.6 a server stream longer than the per-attempt limit runs to its end within its own deadline', async () => {
    pool = newPool({ deadlineMs: 10_000, retry: { perAttemptTimeoutMs: 500 }, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    // 8 messages 200 ms apart: about 1.4 s, well past 500 ms, well within 10 s. The first
    // message arrives at once, so the stream is committed (never retried) from then on.
    const { items, error } = await collect(
      client.ServerStream({ message: 'tick', count: 8, intervalMs: 200, failCode: 0 }, { deadlineMs: 10_000 }) as AsyncIterable<{ message: string }>,
    );
    expect(error, 'the stream must not end DEADLINE_EXCEEDED after the per-attempt limit').toBeUndefined();
    expect(items.map((m) => m.message)).toEqual(Array.from({ length: 8 }, (_, i) => `tick-${i}`));
  });
});

describe('#12.7 a stream deadline and admission start when the method is called (as the README says)', () => {
  it('#12.7 deadline: a stream made 1.5 s before its first next() with a 1 s deadline is already out of time', async () => {
    pool = newPool({ deadlineMs: 10_000, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    const madeAt = Date.now();
    const stream = client.ServerStream({ message: 'tick', count: 100, intervalMs: 50, failCode: 0 }, { deadlineMs: 1_000 }) as AsyncIterable<unknown>;
    await sleep(1_500);
    const { error } = await collect(stream);
    const endedAt = Date.now();
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // Deadline from the call: it ended as soon as it was read (1.5 s after the call), not
    // 1 s after the first next() (2.5 s after the call). 700 ms of margin for a loaded machine.
    expect(endedAt - madeAt, 'ms from the method call to the end of the stream').toBeLessThan(2_200);
    // If the call reached the server, the server saw a deadline 1 s after the method call.
    for (const record of server.calls) expect(record.deadline - madeAt).toBeLessThan(1_400);
  });

  it('#12.7 admission: a stream made while the pool was open is drained by close(), not refused', async () => {
    pool = newPool({ deadlineMs: 10_000, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    const stream = client.ServerStream({ message: 'tick', count: 3, intervalMs: 100, failCode: 0 }) as AsyncIterable<{ message: string }>;
    // The stream was admitted when made: close() finds it in flight and gives it the grace period.
    expect(pool.stats().inFlight, 'calls in flight right after the method call').toBe(1);
    const closing = pool.close({ graceMs: 3_000 });
    const { items, error } = await collect(stream);
    const closed = await closing;
    expect(error).toBeUndefined();
    expect(items).toHaveLength(3);
    expect(closed).toMatchObject({ drained: 1, cancelled: 0 });
  });
});

describe('#12.8 the documented maximum deadline works end to end', () => {
  it('#12.8 deadlineMs 2147483647 (the documented maximum) gets an answer', async () => {
    pool = newPool({ deadlineMs: 2_147_483_647, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    // A handler that takes 100 ms: a server that misread the grpc-timeout header (grpc-js reads
    // "2147484S" as (2147484 * 1000) | 0, a negative number) answers DEADLINE_EXCEEDED first.
    const metadata = { 'x-delay-ms': '100' };
    await expect(client.Echo({ message: 'far' }, { metadata })).resolves.toMatchObject({ message: 'far' });
    await expect(client.Echo({ message: 'far' }, { deadlineMs: 2_147_483_647, metadata })).resolves.toMatchObject({ message: 'far' });
    // And the server saw a finite deadline about 24.8 days out, not one it had to refuse.
    const seen = server.calls.at(-1)!.deadline - Date.now();
    expect(seen).toBeGreaterThan(2_147_000_000);
  });
});
