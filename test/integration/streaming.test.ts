// Streaming calls through the pool, in all three directions: messages in order, early exit,
// deadlines, aborts, failures mid-stream, backpressure both ways, close() draining, listener
// hygiene, retries only where they are safe, the circuit breaker, stats, abandoned iterators,
// header and trailer hooks. The scale scenarios (10,000 sequential streams, the throughput of
// 100,000 messages) are in test/scale/streaming-scale.test.ts, in the slow tier.
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ChannelPool,
  CircuitOpenError,
  StatusError,
  type BidiStreamMethod,
  type ClientStreamMethod,
  type ServerStreamMethod,
} from '../../src/index.js';
import type { CallRecord } from '../helpers/call-log.js';
import { countListeners } from '../helpers/listeners.js';
import { TestServiceClient, type EchoRequest, type EchoResponse, type StreamRequest } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

let server: TestServer;
let pool: ChannelPool;
let callIds = 0;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  pool = fixture.newPool({ deadlineMs: 10_000, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
});

type Req = Partial<EchoRequest>;

/** The streaming methods of TestService, typed (the loaded client is dynamic). */
interface Streams {
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
  ClientStream: ClientStreamMethod<Req, EchoResponse>;
  Bidi: BidiStreamMethod<Req, EchoResponse>;
}

function streams(on: ChannelPool = pool): Streams {
  return on.client(TestServiceClient, server.address) as Streams;
}

const SERVER_STREAM = '/resilient.test.v1.TestService/ServerStream';
const CLIENT_STREAM = '/resilient.test.v1.TestService/ClientStream';
const BIDI = '/resilient.test.v1.TestService/Bidi';

/** Request metadata that scripts the server, with a fresh call id. */
function script(headers: Record<string, string | number> = {}): { id: string; metadata: Record<string, string> } {
  const id = `stream-${++callIds}`;
  const metadata: Record<string, string> = { 'x-call-id': id };
  for (const [key, value] of Object.entries(headers)) metadata[`x-${key}`] = String(value);
  return { id, metadata };
}

/** The server's record of the call with this id (the last attempt, if several). */
function recordOf(id: string): CallRecord | undefined {
  return server.calls.filter((c) => c.callId === id).at(-1);
}

/** Reads a stream to its end or its error; `each` runs after every message (and may break by returning true). */
async function collect<T>(stream: AsyncIterable<T>, each?: (message: T, n: number) => unknown): Promise<{ messages: T[]; error: unknown }> {
  const messages: T[] = [];
  try {
    for await (const message of stream) {
      messages.push(message);
      if ((await each?.(message, messages.length)) === true) break;
    }
    return { messages, error: undefined };
  } catch (error) {
    return { messages, error };
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/**
 * A request source that counts what it hands out: `pulled` requests so far, `released` once
 * its finally block ran (ended, or closed by the consumer), `completed` when it ran to the end.
 */
function source(
  count: number,
  options: { intervalMs?: number; payloadBytes?: number; throwAfter?: { n: number; error: unknown; before?: () => Promise<unknown> } } = {},
) {
  const state = { pulled: 0, released: false, completed: false };
  const payload = Buffer.alloc(options.payloadBytes ?? 0, 0x62);
  async function* requests(): AsyncGenerator<Req> {
    try {
      for (let i = 0; i < count; i++) {
        if (options.throwAfter !== undefined && i === options.throwAfter.n) {
          await options.throwAfter.before?.();
          throw options.throwAfter.error;
        }
        if (i > 0 && options.intervalMs) await sleep(options.intervalMs);
        state.pulled++;
        yield { message: `r-${i}`, payload };
      }
      state.completed = true;
    } finally {
      state.released = true;
    }
  }
  return { state, requests: requests() };
}

/**
 * Runs `body` with the process's unhandled rejections captured rather than reported, so a test
 * can assert there were none (by default Node 20 crashes the process on one). The runner's own
 * listeners are put back afterwards.
 */
async function capturingUnhandledRejections<T>(body: () => Promise<T>): Promise<{ result: T; unhandled: unknown[] }> {
  const unhandled: unknown[] = [];
  const previous = process.listeners('unhandledRejection');
  const capture = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.removeAllListeners('unhandledRejection');
  process.on('unhandledRejection', capture);
  try {
    const result = await body();
    await sleep(20);
    return { result, unhandled };
  } finally {
    process.removeListener('unhandledRejection', capture);
    for (const listener of previous) process.on('unhandledRejection', listener);
  }
}

/**
 * Waits until `read()` stops changing (equal in five reads 100 ms apart), within 30 s, and
 * returns its value. On a loaded machine the server may take several seconds to fill the flow
 * control windows, and pause for a while on the way.
 */
async function whenSettled<T>(read: () => T): Promise<T> {
  let last = JSON.stringify(read());
  let unchanged = 0;
  for (let i = 0; i < 300; i++) {
    await sleep(100);
    const now = JSON.stringify(read());
    unchanged = now === last ? unchanged + 1 : 0;
    if (unchanged === 4) return read();
    last = now;
  }
  throw new Error(`still changing after 30 s: ${last}`);
}

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/**
 * The deadline of the streams whose source fails before its first request: they must fail "at
 * once", under half of it, rather than at it. 20 s leaves a loaded machine 10 s for "at once".
 */
const AT_ONCE_DEADLINE_MS = 20_000;

// ---------------------------------------------------------------------------------------------

describe('server stream', () => {
  it('delivers 1,000 messages in order, then ends', async () => {
    const { messages, error } = await collect(streams().ServerStream({ message: 'm', count: 1_000 }));
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.message)).toEqual(names('m', 1_000));
    expect(messages.map((m) => m.count)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(server.calls.at(-1)).toMatchObject({ method: 'ServerStream', cancelled: false, written: 1_000 });
  });

  // A stream is admitted and started when the method is called, as a unary call is (a lazy
  // start would make its deadline start at the first next()).
  it('starts on the wire when the method is called, before the first next()', async () => {
    const stream = streams().ServerStream({ message: 'lazy', count: 1 });
    await vi.waitFor(() => expect(server.calls).toHaveLength(1), { timeout: 5_000 });
    const { messages } = await collect(stream);
    expect(messages.map((m) => m.message)).toEqual(['lazy-0']);
  });

  it('cancels the call on the server when the loop breaks early', async () => {
    const { id, metadata } = script();
    const { messages, error } = await collect(
      streams().ServerStream({ message: 'b', count: 1_000, intervalMs: 10 }, { metadata }),
      (_, n) => n === 3,
    );
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.message)).toEqual(names('b', 3));
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    expect(recordOf(id)!.written).toBeLessThan(1_000);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  it('fails with DEADLINE_EXCEEDED after the messages that arrived in time', async () => {
    const { id, metadata } = script();
    const { messages, error } = await collect(
      streams().ServerStream({ message: 'd', count: 1_000, intervalMs: 20 }, { deadlineMs: 1_000, metadata }),
    );
    // Ignoring the 1 s deadline would deliver 1,000 messages in 20 s: the server's own pace, one
    // per 20 ms, bounds the count instead of a clock that a loaded machine slows down.
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, method: SERVER_STREAM, target: server.address });
    expect(messages.length).toBeGreaterThanOrEqual(3);
    expect(messages.length).toBeLessThan(100);
    expect(messages.map((m) => m.message)).toEqual(names('d', messages.length));
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
  });

  it('throws signal.reason when aborted mid-stream, and the server sees the cancellation', async () => {
    const { id, metadata } = script();
    const controller = new AbortController();
    const reason = new Error('user went away');
    // 100 ms between messages: none is buffered when the reader aborts (see the KNOWN BUG below).
    const { messages, error } = await collect(
      streams().ServerStream({ message: 'a', count: 1_000, intervalMs: 100 }, { signal: controller.signal, metadata }),
      (_, n) => {
        if (n === 3) controller.abort(reason);
      },
    );
    expect(error).toBe(reason);
    expect(messages.map((m) => m.message)).toEqual(names('a', 3));
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    expect(pool.stats().perChannel[0]).toMatchObject({ inFlight: 0, failed: 1 });
  });

  // The messages grpc-js had buffered when the signal fired are still yielded (33 of the 200
  // here; the rest are dropped), and only then does the loop throw signal.reason.
  it('stops delivering messages once aborted, even those already buffered', async () => {
    // 200 messages arrive at once; the reader aborts after the first and asks for more.
    const controller = new AbortController();
    const reason = new Error('stop now');
    const { messages, error } = await collect(
      streams().ServerStream({ message: 'x', count: 200 }, { signal: controller.signal }),
      async (_, n) => {
        if (n === 1) {
          await expect.poll(() => server.calls.at(-1)?.written).toBe(200);
          await sleep(100);
          controller.abort(reason);
        }
      },
    );
    expect(error).toBe(reason);
    expect(messages).toHaveLength(1);
  });

  it('throws signal.reason when aborted before the first message, and is not retried', async () => {
    const { id, metadata } = script({ 'delay-ms': 5_000 });
    const controller = new AbortController();
    const reason = new Error('gave up waiting');
    const pending = collect(streams().ServerStream({ message: 'w', count: 3 }, { signal: controller.signal, metadata }));
    await expect.poll(() => server.callsFor(id)).toBe(1);
    controller.abort(reason);
    const { messages, error } = await pending;
    expect(error).toBe(reason);
    expect(messages).toHaveLength(0);
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    expect(server.callsFor(id)).toBe(1);
    expect(pool.stats().perChannel[0]).toMatchObject({ inFlight: 0, failed: 1, retries: 0 });
  });

  it('delivers the messages sent before a server error, then the StatusError with its code', async () => {
    const { metadata } = script({ 'trailer-echo': 'why' });
    const { messages, error } = await collect(
      streams().ServerStream({ message: 'e', count: 7, failCode: grpc.status.DATA_LOSS }, { metadata }),
    );
    expect(messages.map((m) => m.message)).toEqual(names('e', 7));
    expect(error).toBeInstanceOf(StatusError);
    const failure = error as StatusError;
    expect(failure).toMatchObject({ code: grpc.status.DATA_LOSS, details: 'scripted failure', method: SERVER_STREAM, attempts: 1 });
    expect(failure.metadata.get('x-trailer-echo')).toEqual(['why']);
  });

  it('holds the server back while the consumer is slow: writes wait instead of buffering 100 MB', async () => {
    const { id, metadata } = script({ 'payload-bytes': 1_024 });
    // The stream's own deadline is far out: this test is about flow control, and reading a
    // thousand messages on a loaded machine may take longer than the pool's 10 s.
    const iterator = streams().ServerStream({ message: 'p', count: 100_000 }, { metadata, deadlineMs: 120_000 })[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) expect((await iterator.next()).value).toMatchObject({ message: `p-${i}` });
    await sleep(500);
    const record = recordOf(id)!;
    // Flow control stops the server after a bounded number of ~1 KB messages.
    const writtenWhileStalled = await whenSettled(() => record.written);
    console.info(
      `server stream backpressure: ${writtenWhileStalled} of 100,000 messages written while the reader paused, ${record.heldWrites} writes held`,
    );
    expect(writtenWhileStalled).toBeLessThan(5_000);
    expect(record.heldWrites).toBeGreaterThan(0);
    // Reading again lets the server go on: it was held back, not stuck (a thousand messages is
    // ten times what it wrote while the reader paused).
    for (let i = 10; i < 1_000; i++) {
      const next = await iterator.next();
      expect(next.done).toBe(false);
      if (next.value!.message !== `p-${i}`) expect(next.value!.message).toBe(`p-${i}`);
    }
    expect(record.written).toBeGreaterThanOrEqual(1_000);
    expect(record.written).toBeLessThan(1_000 + 5_000);
    await iterator.return?.(undefined);
    await expect.poll(() => record.cancelled).toBe(true);
  });

  it('is ended by its deadline when abandoned after one message: nothing stays in flight', async () => {
    const { id, metadata } = script();
    const controller = new AbortController();
    const listeners = countListeners(controller.signal);
    // A 1 s deadline (the first message must come before it, connection included), far from the
    // pool's 10 s: the stream is over within 5 s only if its own deadline ended it.
    const iterator = streams()
      .ServerStream({ message: 'z', count: 1_000, intervalMs: 10 }, { deadlineMs: 1_000, metadata, signal: controller.signal })
      [Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ message: 'z-0' });
    expect(pool.stats().inFlight).toBe(1);
    // Never touched again.
    await expect.poll(() => pool.stats().inFlight, { timeout: 5_000 }).toBe(0);
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    expect(recordOf(id)!.written).toBeLessThan(1_000);
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 1, failed: 1, succeeded: 0, inFlight: 0 });
    expect(listeners).toMatchObject({ added: 1, removed: 1 });
  });

  it('is retried when the first attempt fails before any message, and delivers the messages once', async () => {
    const { id, metadata } = script({ 'fail-times': 1 });
    const { messages, error } = await collect(streams().ServerStream({ message: 'r', count: 5 }, { metadata }));
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.message)).toEqual(names('r', 5));
    expect(server.callsFor(id)).toBe(2);
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 1, succeeded: 1, failed: 0, retries: 1 });
  });

  it('is not retried once a message has arrived', async () => {
    const { id, metadata } = script();
    const { messages, error } = await collect(
      streams().ServerStream({ message: 'n', count: 3, failCode: grpc.status.UNAVAILABLE }, { metadata }),
    );
    expect(messages.map((m) => m.message)).toEqual(names('n', 3));
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1 });
    expect(server.callsFor(id)).toBe(1);
    expect(pool.stats().perChannel[0]).toMatchObject({ retries: 0, failed: 1 });
  });

  it('hands the headers and trailers to onHeader and onTrailer', async () => {
    const { metadata } = script({ 'trailer-echo': 'server-stream' });
    const headers: grpc.Metadata[] = [];
    const trailers: grpc.Metadata[] = [];
    const { messages } = await collect(
      streams().ServerStream(
        { message: 'h', count: 3 },
        { metadata, onHeader: (m) => headers.push(m), onTrailer: (m) => trailers.push(m) },
      ),
    );
    expect(messages).toHaveLength(3);
    expect(headers).toHaveLength(1);
    expect(headers[0]).toBeInstanceOf(grpc.Metadata);
    expect(trailers).toHaveLength(1);
    expect(trailers[0]!.get('x-trailer-echo')).toEqual(['server-stream']);
  });

  it('is refused with CircuitOpenError on its first next() while the circuit is open, without a server call', async () => {
    const breakerPool = new ChannelPool({
      retry: false,
      breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 10_000 },
    });
    try {
      const ss = streams(breakerPool);
      for (let i = 0; i < 3; i++) {
        const { metadata } = script({ 'fail-code': grpc.status.UNAVAILABLE });
        const { error } = await collect(ss.ServerStream({ message: 'f', count: 1 }, { metadata }));
        expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE });
        expect(error).toBeInstanceOf(StatusError);
      }
      const seen = server.calls.length;
      const iterator = ss.ServerStream({ message: 'refused', count: 1 })[Symbol.asyncIterator]();
      const error = await rejection(iterator.next());
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, method: SERVER_STREAM, target: server.address });
      expect(server.calls.length).toBe(seen);
      expect(breakerPool.stats().perChannel[0]).toMatchObject({ started: 4, failed: 4, inFlight: 0 });
      expect(breakerPool.stats().perChannel[0]!.breakers[0]).toMatchObject({ state: 'open', rejected: 1 });
    } finally {
      await breakerPool.close({ graceMs: 0 });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('client stream', () => {
  it('sends 1,000 requests in order and resolves with the response', async () => {
    const { state, requests } = source(1_000);
    const response = await streams().ClientStream(requests);
    expect(response.message).toBe(names('r', 1_000).join(','));
    expect(response.count).toBe(1_000);
    expect(state).toMatchObject({ pulled: 1_000, completed: true });
    expect(server.calls.at(-1)).toMatchObject({ method: 'ClientStream', received: 1_000, cancelled: false });
  });

  it('accepts a plain array as its source', async () => {
    const response = await streams().ClientStream([{ message: 'a' }, { message: 'b' }]);
    expect(response).toMatchObject({ message: 'a,b', count: 2 });
  });

  it('fails with DEADLINE_EXCEEDED mid-stream, stops pulling the source and releases it', async () => {
    const { id, metadata } = script();
    const { state, requests } = source(1_000, { intervalMs: 20 });
    const error = await rejection(streams().ClientStream(requests, { deadlineMs: 1_000, metadata }));
    // Ignoring the 1 s deadline would pull 1,000 requests in 20 s: the source's own pace, one per
    // 20 ms, bounds the count instead of a clock that a loaded machine slows down.
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, method: CLIENT_STREAM });
    expect(recordOf(id)!.received).toBeGreaterThanOrEqual(3);
    await expect.poll(() => state.released).toBe(true);
    expect(state.completed).toBe(false);
    expect(state.pulled).toBeLessThan(100);
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
  });

  it('rejects with signal.reason when aborted mid-stream, and the server sees the cancellation', async () => {
    const { id, metadata } = script();
    const controller = new AbortController();
    const reason = new Error('abort the upload');
    const { state, requests } = source(1_000, { intervalMs: 10 });
    const pending = streams().ClientStream(requests, { signal: controller.signal, metadata });
    await expect.poll(() => recordOf(id)?.received ?? 0).toBeGreaterThanOrEqual(5);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    await expect.poll(() => state.released).toBe(true);
    expect(state.completed).toBe(false);
    expect(pool.stats().perChannel[0]).toMatchObject({ inFlight: 0, failed: 1 });
  });

  it('rejects with the server error that ends the stream midway, and stops pulling the source', async () => {
    const { id, metadata } = script({ 'fail-after': 5, 'fail-code': grpc.status.RESOURCE_EXHAUSTED, 'trailer-echo': 'cs' });
    const { state, requests } = source(1_000, { intervalMs: 5 });
    const error = await rejection(streams().ClientStream(requests, { metadata }));
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'scripted failure', method: CLIENT_STREAM, attempts: 1 });
    expect((error as StatusError).metadata.get('x-trailer-echo')).toEqual(['cs']);
    expect(recordOf(id)!.received).toBe(5);
    await expect.poll(() => state.released).toBe(true);
    expect(state.pulled).toBeLessThan(100);
  });

  it('pulls the source no faster than the server reads', async () => {
    // The server reads one ~1 KB request every 10 ms; the source could hand out 100,000 at once.
    const { id, metadata } = script({ 'read-delay-ms': 10 });
    const { state, requests } = source(100_000, { payloadBytes: 1_024 });
    const controller = new AbortController();
    const pending = streams().ClientStream(requests, { metadata, signal: controller.signal });
    // Two samples, taken as the server reads rather than at set times (which a loaded machine
    // stretches): after 20 reads, the source has long had every chance to fill the windows.
    const received = (): number => recordOf(id)?.received ?? 0;
    await expect.poll(received, { timeout: 10_000 }).toBeGreaterThanOrEqual(20);
    const firstPulled = state.pulled;
    const firstReceived = received();
    await expect.poll(received, { timeout: 10_000 }).toBeGreaterThanOrEqual(firstReceived + 50);
    const secondPulled = state.pulled;
    const secondReceived = received();
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    console.info(`client stream backpressure: pulled ${firstPulled}/${secondPulled}, server read ${firstReceived}/${secondReceived}`);
    // A bounded lead over the reader: HTTP/2 flow-control windows and stream buffers, no more.
    expect(firstPulled).toBeLessThan(5_000);
    expect(secondPulled - secondReceived).toBeLessThan(5_000);
    // Once the windows are full, the source advances only as the server reads.
    expect(secondPulled - firstPulled).toBeLessThanOrEqual(secondReceived - firstReceived + 50);
    await expect.poll(() => state.released).toBe(true);
  });

  it('is never retried, even for UNAVAILABLE', async () => {
    const { id, metadata } = script({ 'fail-times': 1 });
    const error = await rejection(streams().ClientStream(source(3).requests, { metadata }));
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1, method: CLIENT_STREAM });
    expect(server.callsFor(id)).toBe(1);
    expect(pool.stats().perChannel[0]).toMatchObject({ retries: 0, failed: 1 });
  });

  it('rejects with the very error its source throws, and the server sees the call cancelled', async () => {
    const { id, metadata } = script();
    const thrown = new Error('source broke');
    const { state, requests } = source(1_000, {
      throwAfter: { n: 3, error: thrown, before: () => expect.poll(() => recordOf(id)?.received).toBe(3) },
    });
    const error = await rejection(streams().ClientStream(requests, { metadata }));
    expect(error).toBe(thrown);
    expect(state.pulled).toBe(3);
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  // A synchronous source whose first next() throws: the call is neither cancelled nor ended, so
  // it stays open on the wire until its deadline (AT_ONCE_DEADLINE_MS here, 10 s by default) and
  // only then rejects with the source's error. "At once" is under half that deadline.
  it('rejects at once with the error of a synchronous source that throws before its first request', async () => {
    const thrown = new Error('nothing to send');
    const requests = (function* (): Generator<Req> {
      throw thrown;
    })();
    const startedAt = performance.now();
    const error = await rejection(streams().ClientStream(requests, { deadlineMs: AT_ONCE_DEADLINE_MS }));
    expect(error).toBe(thrown);
    expect(performance.now() - startedAt).toBeLessThan(AT_ONCE_DEADLINE_MS / 2);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  // The source's [Symbol.iterator]() is called outside the pump's try block: its error becomes
  // an unhandled rejection (a crash under Node's default --unhandled-rejections=throw), the call
  // stays open until its deadline and then rejects with DEADLINE_EXCEEDED, not with the error.
  it('rejects at once with the error of a source whose iterator cannot be created, leaving no unhandled rejection', async () => {
    const thrown = new Error('cannot iterate');
    const requests: Iterable<Req> = {
      [Symbol.iterator]() {
        throw thrown;
      },
    };
    const startedAt = performance.now();
    const { result: error, unhandled } = await capturingUnhandledRejections(() =>
      rejection(streams().ClientStream(requests, { deadlineMs: AT_ONCE_DEADLINE_MS })),
    );
    expect(unhandled).toEqual([]);
    expect(error).toBe(thrown);
    expect(performance.now() - startedAt).toBeLessThan(AT_ONCE_DEADLINE_MS / 2);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  it('hands the headers and trailers to onHeader and onTrailer', async () => {
    const { metadata } = script({ 'trailer-echo': 'client-stream' });
    const headers: grpc.Metadata[] = [];
    const trailers: grpc.Metadata[] = [];
    await streams().ClientStream([{ message: 'x' }], { metadata, onHeader: (m) => headers.push(m), onTrailer: (m) => trailers.push(m) });
    expect(headers).toHaveLength(1);
    expect(trailers.map((t) => t.get('x-trailer-echo'))).toEqual([['client-stream']]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bidi stream', () => {
  it('echoes 1,000 requests in order while sending', async () => {
    const { state, requests } = source(1_000);
    const { messages, error } = await collect(streams().Bidi(requests));
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.message)).toEqual(names('r', 1_000));
    expect(messages.map((m) => m.count)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(state).toMatchObject({ pulled: 1_000, completed: true });
    expect(server.calls.at(-1)).toMatchObject({ method: 'Bidi', received: 1_000, written: 1_000, cancelled: false });
  });

  it('cancels the call on the server and releases the source when the loop breaks early', async () => {
    const { id, metadata } = script();
    const { state, requests } = source(1_000, { intervalMs: 10 });
    const { messages, error } = await collect(streams().Bidi(requests, { metadata }), (_, n) => n === 3);
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.message)).toEqual(names('r', 3));
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    await expect.poll(() => state.released).toBe(true);
    expect(state.completed).toBe(false);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  it('fails with DEADLINE_EXCEEDED after the echoes that arrived in time', async () => {
    const { id, metadata } = script();
    const { state, requests } = source(1_000, { intervalMs: 20 });
    const { messages, error } = await collect(streams().Bidi(requests, { deadlineMs: 1_000, metadata }));
    // Ignoring the 1 s deadline would echo 1,000 requests in 20 s: the source's own pace, one per
    // 20 ms, bounds the count instead of a clock that a loaded machine slows down.
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, method: BIDI });
    expect(messages.length).toBeGreaterThanOrEqual(3);
    expect(messages.length).toBeLessThan(100);
    expect(messages.map((m) => m.message)).toEqual(names('r', messages.length));
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    await expect.poll(() => state.released).toBe(true);
  });

  it('throws signal.reason when aborted mid-stream, and the server sees the cancellation', async () => {
    const { id, metadata } = script();
    const controller = new AbortController();
    const reason = new Error('abort the chat');
    // 100 ms between requests: no echo is buffered when the reader aborts.
    const { state, requests } = source(1_000, { intervalMs: 100 });
    const { messages, error } = await collect(streams().Bidi(requests, { signal: controller.signal, metadata }), (_, n) => {
      if (n === 3) controller.abort(reason);
    });
    expect(error).toBe(reason);
    expect(messages.map((m) => m.message)).toEqual(names('r', 3));
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    await expect.poll(() => state.released).toBe(true);
    expect(pool.stats().perChannel[0]).toMatchObject({ inFlight: 0, failed: 1 });
  });

  it('delivers the echoes sent before a server error, then the StatusError with its code', async () => {
    const { metadata } = script({ 'fail-after': 5, 'fail-code': grpc.status.ABORTED });
    const { state, requests } = source(1_000, { intervalMs: 5 });
    const { messages, error } = await collect(streams().Bidi(requests, { metadata }));
    expect(messages.map((m) => m.message)).toEqual(names('r', 5));
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.ABORTED, details: 'scripted failure', method: BIDI, attempts: 1 });
    await expect.poll(() => state.released).toBe(true);
    expect(state.pulled).toBeLessThan(100);
  });

  it('holds both the server and the source back while the consumer is slow', async () => {
    const { id, metadata } = script();
    const { state, requests } = source(100_000, { payloadBytes: 1_024 });
    // Its own deadline far out: this test is about flow control, not the pool's 10 s.
    const iterator = streams().Bidi(requests, { metadata, deadlineMs: 120_000 })[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) expect((await iterator.next()).value).toMatchObject({ message: `r-${i}` });
    await sleep(500);
    const record = recordOf(id)!;
    // Flow control stops the server's echoes, then the server's reads, then the source.
    const { pulled, written } = await whenSettled(() => ({ pulled: state.pulled, written: record.written }));
    console.info(
      `bidi backpressure: ${pulled} requests pulled, ${written} echoes written, ${record.heldWrites} writes held while the reader paused`,
    );
    expect(pulled).toBeLessThan(10_000);
    expect(written).toBeLessThan(10_000);
    expect(record.heldWrites).toBeGreaterThan(0);
    // Reading again moves everything on: echoes of requests the source had not given yet arrive.
    for (let i = 10; i < pulled + 200; i++) {
      const next = await iterator.next();
      if (next.value?.message !== `r-${i}`) expect(next.value?.message).toBe(`r-${i}`);
    }
    expect(state.pulled).toBeGreaterThanOrEqual(pulled + 200);
    await iterator.return?.(undefined);
    await expect.poll(() => record.cancelled).toBe(true);
    await expect.poll(() => state.released).toBe(true);
  });

  it('is never retried, even for UNAVAILABLE', async () => {
    const { id, metadata } = script({ 'fail-times': 1 });
    const { messages, error } = await collect(streams().Bidi(source(3).requests, { metadata }));
    expect(messages).toHaveLength(0);
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, attempts: 1, method: BIDI });
    expect(server.callsFor(id)).toBe(1);
    expect(pool.stats().perChannel[0]).toMatchObject({ retries: 0, failed: 1 });
  });

  it('throws the very error its source throws, and the server sees the call cancelled', async () => {
    const { id, metadata } = script();
    const thrown = new Error('source broke');
    const { requests } = source(1_000, {
      throwAfter: { n: 3, error: thrown, before: () => expect.poll(() => recordOf(id)?.received).toBe(3) },
    });
    const { messages, error } = await collect(streams().Bidi(requests, { metadata }));
    expect(error).toBe(thrown);
    expect(messages.length).toBeLessThanOrEqual(3);
    await expect.poll(() => recordOf(id)?.cancelled).toBe(true);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  // Same cause as the client stream's: the iteration throws the source's error only at the deadline.
  it('throws at once the error of a synchronous source that throws before its first request', async () => {
    const thrown = new Error('nothing to send');
    const requests = (function* (): Generator<Req> {
      throw thrown;
    })();
    const startedAt = performance.now();
    const { messages, error } = await collect(streams().Bidi(requests, { deadlineMs: AT_ONCE_DEADLINE_MS }));
    expect(error).toBe(thrown);
    expect(messages).toHaveLength(0);
    expect(performance.now() - startedAt).toBeLessThan(AT_ONCE_DEADLINE_MS / 2);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  // Same cause as the client stream's: an unhandled rejection, then DEADLINE_EXCEEDED at the deadline.
  it('throws at once the error of a source whose iterator cannot be created, leaving no unhandled rejection', async () => {
    const thrown = new Error('cannot iterate');
    const requests: AsyncIterable<Req> = {
      [Symbol.asyncIterator]() {
        throw thrown;
      },
    };
    const startedAt = performance.now();
    const { result, unhandled } = await capturingUnhandledRejections(() =>
      collect(streams().Bidi(requests, { deadlineMs: AT_ONCE_DEADLINE_MS })),
    );
    expect(unhandled).toEqual([]);
    expect(result.error).toBe(thrown);
    expect(result.messages).toHaveLength(0);
    expect(performance.now() - startedAt).toBeLessThan(AT_ONCE_DEADLINE_MS / 2);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  it('hands the headers and trailers to onHeader and onTrailer', async () => {
    const { metadata } = script({ 'trailer-echo': 'bidi' });
    const headers: grpc.Metadata[] = [];
    const trailers: grpc.Metadata[] = [];
    const { messages } = await collect(
      streams().Bidi([{ message: 'x' }], { metadata, onHeader: (m) => headers.push(m), onTrailer: (m) => trailers.push(m) }),
    );
    expect(messages.map((m) => m.message)).toEqual(['x']);
    expect(headers).toHaveLength(1);
    expect(trailers.map((t) => t.get('x-trailer-echo'))).toEqual([['bidi']]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('streams and the pool', () => {
  it('close({ graceMs }) drains the streams that finish in time and cancels the others', async () => {
    const s = streams();
    // Each direction: one stream that ends within ~250 ms, one that would take 10 s.
    const fastServer = collect(s.ServerStream({ message: 'fs', count: 5, intervalMs: 50 }));
    const slowServer = collect(s.ServerStream({ message: 'ss', count: 100, intervalMs: 100 }));
    const fastClient = s.ClientStream(source(5, { intervalMs: 50 }).requests);
    const slowClientSource = source(100, { intervalMs: 100 });
    const slowClient = s.ClientStream(slowClientSource.requests);
    const fastBidi = collect(s.Bidi(source(5, { intervalMs: 50 }).requests));
    const slowBidiSource = source(100, { intervalMs: 100 });
    const slowBidi = collect(s.Bidi(slowBidiSource.requests));
    await expect.poll(() => server.calls.length).toBe(6);
    expect(pool.stats().inFlight).toBe(6);

    const result = await pool.close({ graceMs: 1_000 });
    expect(result).toMatchObject({ drained: 3, cancelled: 3 });

    expect((await fastServer).messages.map((m) => m.message)).toEqual(names('fs', 5));
    expect((await fastServer).error).toBeUndefined();
    await expect(fastClient).resolves.toMatchObject({ count: 5 });
    expect((await fastBidi).messages).toHaveLength(5);
    expect((await fastBidi).error).toBeUndefined();

    const cancelled = [(await slowServer).error, await rejection(slowClient), (await slowBidi).error];
    for (const error of cancelled) {
      expect(error).toBeInstanceOf(StatusError);
      expect(error).toMatchObject({ code: grpc.status.CANCELLED });
      expect((error as StatusError).details).toMatch(/ChannelPool\.close\(\).*graceMs 1000/);
    }
    expect((await slowServer).messages.length).toBeGreaterThan(3);
    expect((await slowServer).messages.length).toBeLessThan(100);
    await expect.poll(() => server.calls.filter((c) => c.cancelled).length).toBe(3);
    for (const { state } of [slowClientSource, slowBidiSource]) {
      await expect.poll(() => state.released).toBe(true);
      expect(state.completed).toBe(false);
    }
    expect(pool.stats()).toMatchObject({ state: 'closed', inFlight: 0, channels: 0 });
  });

  it('refuses every direction with signal.reason when the signal is already aborted, without a server call', async () => {
    const s = streams();
    const reason = new Error('already gone');
    const signal = AbortSignal.abort(reason);
    const { state, requests } = source(3);
    expect((await collect(s.ServerStream({ message: 'x', count: 1 }, { signal }))).error).toBe(reason);
    expect(await rejection(s.ClientStream(requests, { signal }))).toBe(reason);
    expect((await collect(s.Bidi(source(3).requests, { signal }))).error).toBe(reason);
    expect(state.pulled).toBe(0);
    expect(server.calls).toHaveLength(0);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
  });

  it('does not open the circuit for streams the caller ended: early exits, aborts, throwing sources', async () => {
    const breakerPool = new ChannelPool({
      retry: false,
      breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 10_000 },
    });
    try {
      const s = streams(breakerPool);
      for (let i = 0; i < 4; i++) {
        await collect(s.ServerStream({ message: 'early', count: 100, intervalMs: 5 }), () => true);
        const controller = new AbortController();
        await collect(s.Bidi(source(100, { intervalMs: 5 }).requests, { signal: controller.signal }), () => controller.abort());
        const thrown = new Error('bad source');
        expect(await rejection(s.ClientStream(source(10, { throwAfter: { n: 2, error: thrown } }).requests))).toBe(thrown);
      }
      const { messages, error } = await collect(s.ServerStream({ message: 'still', count: 2 }));
      expect(error).toBeUndefined();
      expect(messages.map((m) => m.message)).toEqual(names('still', 2));
      expect(breakerPool.stats().perChannel[0]!.breakers[0]).toMatchObject({ state: 'closed', opened: 0, rejected: 0 });
    } finally {
      await breakerPool.close({ graceMs: 0 });
    }
  });

  it('counts every stream in stats: started, succeeded, failed, none left in flight', async () => {
    const s = streams();
    await collect(s.ServerStream({ message: 'ok', count: 3 }));
    await s.ClientStream([{ message: 'ok' }]);
    await collect(s.Bidi([{ message: 'ok' }]));
    // Leaving early is the caller's choice: it counts as succeeded.
    await collect(s.ServerStream({ message: 'early', count: 100, intervalMs: 5 }), () => true);
    const failed = [
      (await collect(s.ServerStream({ message: 'bad', count: 2, failCode: grpc.status.INTERNAL }))).error,
      await rejection(s.ClientStream([{ message: 'bad' }], { metadata: { 'x-fail-code': String(grpc.status.PERMISSION_DENIED) } })),
      (await collect(s.Bidi([{ message: 'bad' }], { metadata: { 'x-fail-code': String(grpc.status.NOT_FOUND) } }))).error,
    ];
    expect(failed.map((e) => (e as StatusError).code)).toEqual([
      grpc.status.INTERNAL,
      grpc.status.PERMISSION_DENIED,
      grpc.status.NOT_FOUND,
    ]);
    expect(pool.stats()).toMatchObject({ inFlight: 0 });
    expect(pool.stats().perChannel[0]).toMatchObject({ started: 7, succeeded: 4, failed: 3, inFlight: 0 });
  });
});
