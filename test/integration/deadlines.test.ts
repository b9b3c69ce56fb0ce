// Every call carries a finite deadline on the wire; the cascade, parent propagation and aborts;
// streams: the per-attempt limit stops at commit, the deadline runs from the method call; the
// documented maximum deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { TestServiceClient } from '../helpers/protos.js';
import type { EchoRequest, EchoResponse } from '../helpers/protos.js';
import type { CallRecord } from '../helpers/call-log.js';
import { startServerAndPools, type ServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let newPool: ServerAndPools['newPool'];
let pool: ChannelPool;

beforeEach(async () => {
  ({ server, newPool } = await startServerAndPools());
  pool = newPool({ deadlineMs: 4_000 });
});

/**
 * Checks the deadline the server saw for a call whose client-side deadline is `at`, `budgetMs`
 * from when the call was made. Deadlines travel as a relative grpc-timeout, which the server
 * turns back into a deadline when the headers arrive. So, without any margin for time in transit
 * or a loaded machine's stalls:
 *   - the server's deadline is never before `at` (the time in transit only moves it later);
 *   - it is never more than `budgetMs` after the server received the call (the client sends
 *     what is left of its budget, never more).
 * A budget one level off (the levels compared below differ by >= 500 ms) falls outside unless
 * the call took that long to get there.
 */
function expectDeadline(record: CallRecord, at: number, budgetMs: number): void {
  expect(Number.isFinite(record.deadline)).toBe(true);
  expect(record.deadline, `server's deadline, not before the client's (${at})`).toBeGreaterThanOrEqual(at);
  expect(record.deadline - record.receivedAt, `ms left when the server got the call, budget ${budgetMs}`).toBeLessThanOrEqual(budgetMs);
}

/** Makes the call and checks the deadline the server saw: `budgetMs` from the call. */
async function expectBudget(call: () => Promise<unknown>, budgetMs: number): Promise<void> {
  const calledAt = Date.now();
  await call();
  expectDeadline(server.calls.at(-1)!, calledAt + budgetMs, budgetMs);
}

describe('deadline cascade', () => {
  it('sends the pool default when nothing else is set', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    await expectBudget(() => echo.Echo({ message: 'a' }), 4_000);
  });

  it('uses the default of 10 s for a pool without options', async () => {
    const bare = new ChannelPool();
    try {
      const echo = bare.client(TestServiceClient, server.address);
      await expectBudget(() => echo.Echo({ message: 'a' }), 10_000);
    } finally {
      await bare.close();
    }
  });

  it('lets the client, then the method, then the call override, in that order', async () => {
    const client = pool.client(TestServiceClient, server.address, { deadlineMs: 3_000 });
    const withMethod = pool.client(TestServiceClient, server.address, { deadlineMs: 3_000, methods: { Echo: { deadlineMs: 2_000 } } });
    const viaAlias = pool.client(TestServiceClient, server.address, { methods: { echo: { deadlineMs: 1_500 } } });

    await expectBudget(() => client.Echo({ message: 'a' }), 3_000);
    await expectBudget(() => withMethod.Echo({ message: 'a' }), 2_000);
    await expectBudget(() => withMethod.echo({ message: 'a' }), 2_000);
    await expectBudget(() => viaAlias.Echo({ message: 'a' }), 1_500);
    await expectBudget(() => withMethod.Echo({ message: 'a' }, { deadlineMs: 1_000 }), 1_000);
  });

  it('takes an absolute deadline as a Date or epoch ms, over every deadlineMs', async () => {
    const echo = pool.client(TestServiceClient, server.address, { methods: { Echo: { deadlineMs: 300 } } });
    const at = Date.now() + 2_500;
    await echo.Echo({ message: 'a' }, { deadline: at });
    expectDeadline(server.calls.at(-1)!, at, 2_500);
    await echo.Echo({ message: 'b' }, { deadline: new Date(at) });
    expectDeadline(server.calls.at(-1)!, at, 2_500);
  });

  it('fails a slow call with DEADLINE_EXCEEDED when its deadline passes, and the server sees it end', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    // Connected first: the deadline then ends a call the server has (and sees end), not a
    // connection still being made on a loaded machine.
    await echo.Echo({ message: 'connect' });
    const error = await echo.Echo({ message: 'slow', delayMs: 5_000 }, { deadlineMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      method: '/resilient.test.v1.TestService/Echo',
      target: server.address,
    });
    // It did not wait for the server, which would have answered after 5 s: the call ended on the
    // server before its handler answered.
    await expect.poll(() => server.calls.at(-1)!.cancelled).toBe(true);
  });
});

describe('parent propagation', () => {
  let front: grpc.Server;
  let frontAddress: string;
  let frontReplies: Array<{ downstreamDeadline: number; error?: StatusError }>;

  beforeEach(async () => {
    frontReplies = [];
    const downstream = pool.client(TestServiceClient, server.address);
    front = new grpc.Server();
    front.addService(TestServiceClient.service, {
      Echo(call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) {
        downstream
          .Echo({ message: call.request.message, delayMs: call.request.delayMs }, { parent: call })
          .then((reply: EchoResponse) => {
            frontReplies.push({ downstreamDeadline: server.calls.at(-1)!.deadline });
            callback(null, reply);
          })
          .catch((error: StatusError) => {
            frontReplies.push({ downstreamDeadline: server.calls.at(-1)!.deadline, error });
            callback(error);
          });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      front.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    frontAddress = `127.0.0.1:${port}`;
  });

  afterEach(() => {
    front.forceShutdown();
  });

  it('gives the downstream call the parent deadline when it is earlier', async () => {
    const edge = pool.client(TestServiceClient, frontAddress);
    const at = Date.now() + 1_200;
    await edge.Echo({ message: 'via front' }, { deadline: at });
    // The pool default (4 s) would be later: the parent's 1.2 s wins.
    const downstream = server.calls.at(-1)!;
    expect(frontReplies[0]!.downstreamDeadline).toBe(downstream.deadline);
    expectDeadline(downstream, at, 1_200);
  });

  it('keeps its own deadline when the parent allows more', async () => {
    const edge = pool.client(TestServiceClient, frontAddress);
    const startedAt = Date.now();
    await edge.Echo({ message: 'via front' }, { deadlineMs: 60_000 });
    const downstream = server.calls.at(-1)!;
    expect(frontReplies[0]!.downstreamDeadline).toBe(downstream.deadline);
    expectDeadline(downstream, startedAt + 4_000, 4_000);
  });

  it('cancels the downstream call when the parent call is cancelled', async () => {
    const edge = pool.client(TestServiceClient, frontAddress);
    const controller = new AbortController();
    const pending = edge.Echo({ message: 'slow', delayMs: 5_000 }, { signal: controller.signal });
    await expect.poll(() => server.calls.length).toBe(1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    // The backend sees its call cancelled, and the front's downstream call ends CANCELLED.
    await expect.poll(() => server.calls[0]!.cancelled).toBe(true);
    await expect.poll(() => frontReplies.length).toBe(1);
    expect(frontReplies[0]!.error).toMatchObject({ code: grpc.status.CANCELLED });
    expect(frontReplies[0]!.error!.details).toMatch(/parent call was cancelled/);
  });
});

describe('abort', () => {
  it('rejects with signal.reason before any call when the signal is already aborted', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const reason = new Error('user navigated away');
    await expect(echo.Echo({ message: 'a' }, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(server.calls).toHaveLength(0);
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 0, inFlight: 0 });
  });

  it('cancels a running call on the wire and rejects with signal.reason', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const controller = new AbortController();
    const pending = echo.Echo({ message: 'slow', delayMs: 5_000 }, { signal: controller.signal });
    await expect.poll(() => server.calls.length).toBe(1);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect.poll(() => server.calls[0]!.cancelled).toBe(true);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('rejects with the default reason, a DOMException whose own numeric code is not a gRPC one; the README line tells them apart', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const controller = new AbortController();
    const pending = echo.Echo({ message: 'slow', delayMs: 5_000 }, { signal: controller.signal });
    await expect.poll(() => server.calls.length).toBe(1);
    controller.abort();
    const aborted: unknown = await pending.catch((e: unknown) => e);
    const failed: unknown = await echo
      .Echo({ message: 'x' }, { metadata: { 'x-fail-code': String(grpc.status.NOT_FOUND) } })
      .catch((e: unknown) => e);
    expect(aborted).toBe(controller.signal.reason);
    expect(aborted).toBeInstanceOf(DOMException);
    expect(aborted).toMatchObject({ name: 'AbortError', code: 20 });
    // The README's one line, and why `typeof err.code === 'number'` is not it.
    expect([aborted === controller.signal.reason, aborted instanceof StatusError]).toEqual([true, false]);
    expect([failed === controller.signal.reason, failed instanceof StatusError]).toEqual([false, true]);
    expect(typeof (aborted as { code: unknown }).code).toBe('number');
  });

  it('leaves no listener on a long-lived signal shared by many calls', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const { addEventListener, removeEventListener } = controller.signal;
    controller.signal.addEventListener = function (...args: Parameters<AbortSignal['addEventListener']>) {
      added++;
      return addEventListener.apply(this, args);
    };
    controller.signal.removeEventListener = function (...args: Parameters<AbortSignal['removeEventListener']>) {
      removed++;
      return removeEventListener.apply(this, args);
    };
    for (let i = 0; i < 200; i++) await echo.Echo({ message: `${i}` }, { signal: controller.signal });
    await echo.Echo({ message: 'fail' }, { signal: controller.signal, metadata: { 'x-fail-code': '5' } }).catch(() => undefined);
    expect(added).toBe(201);
    expect(removed).toBe(201);
  });
});

// ---------------------------------------------------------------------------------------------
// Streams, and the largest deadline. Each test makes its own pool.

async function collect<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error?: unknown }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
    return { items };
  } catch (error) {
    return { items, error };
  }
}

describe('perAttemptTimeoutMs does not cut a stream once it can no longer be retried', () => {
  it('a server stream longer than the per-attempt limit runs to its end within its own deadline', async () => {
    const pool = newPool({ deadlineMs: 10_000, retry: { perAttemptTimeoutMs: 1_000 }, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    // Connected first, so that the per-attempt limit times the stream alone, not a connection
    // made on a loaded machine.
    await client.Echo({ message: 'connect' });
    // 8 messages 300 ms apart: about 2.1 s, well past 1 s, well within 10 s. The first message
    // arrives at once, so the stream is committed (never retried) from then on.
    const { items, error } = await collect(
      client.ServerStream({ message: 'tick', count: 8, intervalMs: 300, failCode: 0 }, { deadlineMs: 10_000 }) as AsyncIterable<{
        message: string;
      }>,
    );
    expect(error, 'the stream must not end DEADLINE_EXCEEDED after the per-attempt limit').toBeUndefined();
    expect(items.map((m) => m.message)).toEqual(Array.from({ length: 8 }, (_, i) => `tick-${i}`));
  });
});

describe('a stream deadline and admission start when the method is called (as the README says)', () => {
  it('deadline: a stream made 3 s before its first next() with a 2 s deadline is already out of time', async () => {
    const pool = newPool({ deadlineMs: 10_000, breaker: false });
    const client = pool.client(TestServiceClient, server.address);
    const stream = client.ServerStream(
      { message: 'tick', count: 100, intervalMs: 50, failCode: 0 },
      { deadlineMs: 2_000 },
    ) as AsyncIterable<unknown>;
    await sleep(3_000);
    const readAt = Date.now();
    const { items, error } = await collect(stream);
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // Deadline from the call: it was over before the first next(), so reading only delivers what
    // had arrived and the status. The server's pace, one message per 50 ms, bounds what it sent
    // in the call's 2 s (a loaded machine only sends fewer); a deadline counted from the first
    // next() would have let it send for 5 s, about 100 messages.
    expect(items.length, 'messages delivered').toBeLessThanOrEqual(2_000 / 50 + 1);
    // If the call reached the server, the server's deadline had passed before the first next().
    for (const record of server.calls) expect(record.deadline).toBeLessThanOrEqual(readAt);
  });

  it('admission: a stream made while the pool was open is drained by close(), not refused', async () => {
    const pool = newPool({ deadlineMs: 10_000, breaker: false });
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

describe('the documented maximum deadline works end to end', () => {
  it('deadlineMs 2147483647 (the documented maximum) gets an answer', async () => {
    const pool = newPool({ deadlineMs: 2_147_483_647, breaker: false });
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
