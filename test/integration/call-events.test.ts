// The call-level events against a real server: one start and one end per call, whatever its
// shape and outcome, with attempts, backoff, messages and refusals; attempt events with the
// endpoint's address; headers added by an onAttemptStart listener reach the server.
import * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type ChannelPool,
  CircuitOpenError,
  PoolClosedError,
  type AttemptEndEvent,
  type AttemptStartEvent,
  type BidiStreamMethod,
  type CallEndEvent,
  type CallStartEvent,
  type ChannelPoolOptions,
  type ClientStreamMethod,
  type ServerStreamMethod,
  type UnaryMethod,
} from '../../src/index.js';
import { TestServiceClient, type EchoRequest, type EchoResponse, type StreamRequest } from '../helpers/protos.js';
import { startServerAndPools, type ServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

interface Echo {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
  ClientStream: ClientStreamMethod<Partial<EchoRequest>, EchoResponse>;
  Bidi: BidiStreamMethod<Partial<EchoRequest>, EchoResponse>;
}

const SERVICE = 'resilient.test.v1.TestService';

let server: TestServer;
let newPool: ServerAndPools['newPool'];
let pool: ChannelPool;
let log: {
  starts: CallStartEvent[];
  ends: CallEndEvent[];
  attemptStarts: Omit<AttemptStartEvent, 'metadata' | 'scope'>[];
  attemptEnds: AttemptEndEvent[];
};
let callIds = 0;

function makePool(options: ChannelPoolOptions = {}): Echo {
  pool = newPool({ deadlineMs: 5_000, retry: { initialDelayMs: 20, maxDelayMs: 20 }, breaker: false, ...options });
  log = { starts: [], ends: [], attemptStarts: [], attemptEnds: [] };
  pool.onCallStart((event) => log.starts.push(event));
  pool.onCallEnd((event) => log.ends.push(event));
  pool.onAttemptStart(({ metadata, scope, ...event }) => {
    metadata.set('x-added-by-listener', `attempt-${event.attempt}`);
    log.attemptStarts.push(event);
  });
  pool.onAttemptEnd((event) => log.attemptEnds.push(event));
  return pool.client(TestServiceClient, server.address) as unknown as Echo;
}

function script(headers: Record<string, string | number> = {}): { id: string; metadata: Record<string, string> } {
  const id = `events-${++callIds}`;
  const metadata: Record<string, string> = { 'x-call-id': id };
  for (const [key, value] of Object.entries(headers)) metadata[`x-${key}`] = String(value);
  return { id, metadata };
}

async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

beforeEach(async () => {
  ({ server, newPool } = await startServerAndPools());
});

describe('call events', () => {
  it('a healthy unary call: one start, one attempt with the endpoint, one end', async () => {
    const echo = makePool();
    await echo.Echo({ message: 'hi' });
    const info = { callId: 1, target: server.address, method: `/${SERVICE}/Echo`, service: SERVICE, methodName: 'Echo', type: 'unary' };
    expect(log.starts).toEqual([info]);
    expect(log.attemptStarts).toEqual([{ ...info, attempt: 1, hedge: false }]);
    expect(log.attemptEnds).toEqual([
      { ...info, attempt: 1, code: 0, durationMs: expect.any(Number), peer: server.address, hedge: false, won: undefined },
    ]);
    expect(log.ends).toEqual([
      {
        ...info,
        code: 0,
        durationMs: expect.any(Number),
        attempts: 1,
        hedges: 0,
        backoffMs: 0,
        messagesSent: 1,
        messagesReceived: 1,
        refused: undefined,
        details: undefined,
      },
    ]);
    expect(log.ends[0]!.durationMs).toBeGreaterThan(0);
    expect(server.calls[0]!.metadata.get('x-added-by-listener')).toEqual(['attempt-1']);
  });

  it("a retried call: every attempt reported, the backoff counted, listener headers on every attempt, the caller's Metadata untouched", async () => {
    const echo = makePool();
    const { id, metadata } = script({ 'fail-times': 2 });
    const own = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) own.set(key, value);
    await echo.Echo({ message: 'hi' }, { metadata: own });
    expect(own.get('x-added-by-listener')).toEqual([]);
    expect(server.calls.filter((c) => c.callId === id).map((c) => c.metadata.get('x-added-by-listener')[0])).toEqual([
      'attempt-1',
      'attempt-2',
      'attempt-3',
    ]);
    expect(log.attemptEnds.map((e) => [e.attempt, e.code, e.peer])).toEqual([
      [1, grpc.status.UNAVAILABLE, server.address],
      [2, grpc.status.UNAVAILABLE, server.address],
      [3, grpc.status.OK, server.address],
    ]);
    expect(log.ends).toHaveLength(1);
    expect(log.ends[0]).toMatchObject({ code: 0, attempts: 3, messagesSent: 1, messagesReceived: 1 });
    // Two backoffs of 0..20 ms (full jitter) were slept, in ms, within the call: whatever a loaded
    // machine's timers made of them, they fit in the call's own duration.
    expect(log.ends[0]!.backoffMs).toBeGreaterThanOrEqual(0);
    expect(log.ends[0]!.backoffMs).toBeLessThanOrEqual(log.ends[0]!.durationMs);
  });

  it('a failed call ends with its code and details', async () => {
    const echo = makePool({ retry: false });
    await expect(echo.Echo({ message: 'x' }, { metadata: script({ 'fail-code': grpc.status.NOT_FOUND }).metadata })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    expect(log.ends).toEqual([
      expect.objectContaining({
        code: grpc.status.NOT_FOUND,
        attempts: 1,
        messagesSent: 1,
        messagesReceived: 0,
        details: 'scripted failure',
        refused: undefined,
      }),
    ]);
  });

  it('each streaming shape counts its messages', async () => {
    const echo = makePool();
    expect(await drain(echo.ServerStream({ message: 's', count: 5 }))).toBe(5);
    await echo.ClientStream([{ message: 'a' }, { message: 'b' }, { message: 'c' }]);
    expect(await drain(echo.Bidi([{ message: 'a' }, { message: 'b' }, { message: 'c' }, { message: 'd' }]))).toBe(4);
    expect(log.ends.map((e) => [e.type, e.methodName, e.code, e.attempts, e.messagesSent, e.messagesReceived])).toEqual([
      ['server_stream', 'ServerStream', 0, 1, 1, 5],
      ['client_stream', 'ClientStream', 0, 1, 3, 1],
      ['bidi_stream', 'Bidi', 0, 1, 4, 4],
    ]);
    expect(log.starts.map((e) => e.callId)).toEqual(log.ends.map((e) => e.callId));
  });

  it('a server stream that settles before its reader reads counts every message', async () => {
    const echo = makePool();
    const stream = echo.ServerStream({ message: 's', count: 10 });
    // The call starts at the method call and settles when its status arrives, read or not.
    for (let i = 0; i < 200 && log.ends.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log.ends).toHaveLength(1);
    expect(log.ends[0]).toMatchObject({ code: 0, messagesReceived: 10 });
    expect(await drain(stream)).toBe(10);
  });

  it('a reader that leaves early ends the call CANCELLED', async () => {
    const echo = makePool();
    for await (const _ of echo.ServerStream({ message: 's', count: 100, intervalMs: 5 })) break;
    for (let i = 0; i < 200 && log.ends.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log.ends).toEqual([expect.objectContaining({ type: 'server_stream', code: grpc.status.CANCELLED, attempts: 1 })]);
  });

  it('an open circuit refuses the call: refused "circuit", no attempt', async () => {
    const echo = makePool({
      retry: false,
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, windowMs: 10_000, resetTimeoutMs: 60_000 },
    });
    const failing = script({ 'fail-code': grpc.status.UNAVAILABLE }).metadata;
    for (let i = 0; i < 2; i++)
      await expect(echo.Echo({ message: 'x' }, { metadata: failing })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(echo.Echo({ message: 'x' })).rejects.toBeInstanceOf(CircuitOpenError);
    expect(log.ends.at(-1)).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      attempts: 0,
      refused: 'circuit',
      messagesSent: 0,
      messagesReceived: 0,
    });
    expect(log.attemptStarts).toHaveLength(2);
    expect(log.starts).toHaveLength(3);
  });

  it('a call refused by a closing pool, and one whose signal was already aborted, still start and end', async () => {
    const echo = makePool();
    const slow = echo.Echo({ message: 'slow', delayMs: 300 });
    const closing = pool.close({ graceMs: 2_000 });
    await expect(echo.Echo({ message: 'x' })).rejects.toBeInstanceOf(PoolClosedError);
    const refused = log.ends.find((e) => e.refused === 'pool');
    expect(refused).toMatchObject({ code: grpc.status.CANCELLED, attempts: 0, refused: 'pool' });
    expect(log.starts.map((e) => e.callId)).toContain(refused!.callId);
    await slow;
    await closing;

    const again = makePool();
    const controller = new AbortController();
    controller.abort(new Error('mine'));
    await expect(again.Echo({ message: 'x' }, { signal: controller.signal })).rejects.toThrow('mine');
    expect(log.ends).toEqual([expect.objectContaining({ code: grpc.status.CANCELLED, attempts: 0, refused: undefined })]);
  });

  it('bad arguments are no call: no events', async () => {
    const echo = makePool();
    await expect(echo.Echo(null as never)).rejects.toBeInstanceOf(TypeError);
    await expect(echo.Echo({ message: 'x' }, { deadlineMs: -1 })).rejects.toBeInstanceOf(RangeError);
    expect(log.starts).toEqual([]);
    expect(log.ends).toEqual([]);
  });

  it('a call started before anybody listened reports nothing; calls after a subscription are numbered from 1', async () => {
    pool = newPool({ breaker: false });
    const echo = pool.client(TestServiceClient, server.address) as unknown as Echo;
    const ends: CallEndEvent[] = [];
    const slow = echo.Echo({ message: 'slow', delayMs: 100 });
    const subscription = pool.onCallEnd((event) => ends.push(event));
    await slow;
    expect(ends).toEqual([]);
    await echo.Echo({ message: 'x' });
    subscription.dispose();
    await echo.Echo({ message: 'y' });
    expect(ends.map((e) => e.callId)).toEqual([1]);
  });

  it('a scope set by an attempt listener wraps the grpc-js call', async () => {
    pool = newPool({ breaker: false });
    const echo = pool.client(TestServiceClient, server.address) as unknown as Echo;
    const scoped: number[] = [];
    pool.onAttemptStart((event) => {
      event.scope = (start) => {
        scoped.push(event.attempt);
        start();
      };
    });
    await echo.Echo({ message: 'x' });
    // A scope that never starts the attempt cannot keep it off the wire.
    pool.onAttemptStart((event) => {
      event.scope = () => {};
    });
    await expect(echo.Echo({ message: 'y' })).resolves.toMatchObject({ message: 'y' });
    expect(scoped).toEqual([1]);
  });
});
