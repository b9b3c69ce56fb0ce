// Streams judged at their first message (issue 19, the stream rows): in the method's circuit, in
// the target's circuit and in the endpoint books of a multi-endpoint target (`ipv4:a,b,c`, one
// real grpc-js test server per endpoint, test/helpers/endpoint-fleet.ts). A stream that received
// a message is healthy, however it ends afterwards: at its own deadline, or with a server error.
//
// Rows proved here (the fast tier: outcomes, not timing):
// - 25 server-stream subscriptions that got messages and then ended at their own deadline: no
//   circuit opens, the next stream is admitted, no endpoint books a failure or is ejected. The
//   same for 25 bidi streams, and for 25 server streams that got 3 messages then UNAVAILABLE.
// - A half-open probe that is a stream (server or bidi) settles at its first message: the calls
//   made while it keeps delivering are admitted.
// - Stream-only traffic to healthy endpoints never ejects one, with ejection tuned to act on a
//   single failed attempt per interval.
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type {
  ChannelPool,
  BidiStreamMethod,
  BreakerStateChange,
  ChannelPoolOptions,
  EndpointEjection,
  ServerStreamMethod,
  UnaryMethod,
} from '../../src/index.js';
import { closeScenariosAfterEach, setUp, streamToEnd } from '../helpers/fleet-scenario.js';
import type { Fleet } from '../helpers/endpoint-fleet.js';
import { TestServiceClient, type EchoRequest, type EchoResponse, type StreamRequest } from '../helpers/protos.js';

closeScenariosAfterEach();

interface Streams {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
  Bidi: BidiStreamMethod<Partial<EchoRequest>, EchoResponse>;
}

const SERVER_STREAM = '/resilient.test.v1.TestService/ServerStream';
const BIDI = '/resilient.test.v1.TestService/Bidi';
const STREAMS = 25;
/**
 * The subscriptions' own deadline. Long enough for each of 25 streams to get messages first on a
 * loaded machine (the channel is connected before they start); the streams end by it.
 */
const SUBSCRIPTION_DEADLINE_MS = 4_000;
/**
 * Ejection that acts on the first failure booked: judged every 50 ms, with one attempt per
 * endpoint enough. If a stream that got messages were booked as a failure, its endpoint would go.
 */
const EAGER_EJECTION: ChannelPoolOptions['endpointEjection'] = { intervalMs: 50, requestVolume: 1, failurePercentage: 1 };

/** A fleet of three healthy endpoints and a pool that records every breaker change and ejection. */
async function healthyFleet(options: ChannelPoolOptions = {}) {
  const { fleet, pool } = await setUp(['healthy', 'healthy', 'healthy'], { endpointEjection: EAGER_EJECTION, ...options });
  const changes: BreakerStateChange[] = [];
  const ejections: EndpointEjection[] = [];
  pool.onBreakerStateChange((change) => changes.push(change));
  pool.onEndpointEjection((ejection) => ejections.push(ejection));
  const test = pool.client(TestServiceClient, fleet.target) as unknown as Streams;
  // Connected to every endpoint before the streams start (round_robin connects them all).
  for (let i = 0; i < 3; i++) await test.Echo({ message: 'warm-up' });
  return { fleet, pool, test, changes, ejections };
}

/** A bidi request source that sends one request every `intervalMs`, bounded; released when the call ends. */
async function* requests(intervalMs: number, max = 10_000): AsyncGenerator<Partial<EchoRequest>> {
  for (let i = 0; i < max; i++) {
    if (i > 0) await sleep(intervalMs);
    yield { message: `r-${i}` };
  }
}

/** Every breaker of the pool's one channel, the target's included, and its endpoint books. */
function channelOf(pool: ChannelPool) {
  const channel = pool.stats().perChannel[0]!;
  return { breakers: channel.breakers, endpoints: channel.endpoints };
}

/** What the rows assert after the streams: nothing opened, nothing ejected, no endpoint failure. */
function expectNothingCounted(pool: ChannelPool, fleet: Fleet, changes: BreakerStateChange[], ejections: EndpointEjection[]): void {
  expect(
    changes.filter((c) => c.state === 'open'),
    'circuit openings',
  ).toEqual([]);
  const { breakers, endpoints } = channelOf(pool);
  for (const breaker of breakers)
    expect(breaker, `breaker ${breaker.method ?? '(target)'}`).toMatchObject({ state: 'closed', opened: 0, rejected: 0 });
  // The target's circuit is there (scope 'method' makes it) and saw the streams too.
  expect(breakers.some((b) => b.method === undefined)).toBe(true);
  expect(ejections, 'ejections').toEqual([]);
  expect(endpoints.map((e) => e.address)).toEqual(fleet.endpoints.map((e) => e.address).sort());
  for (const endpoint of endpoints) expect(endpoint, endpoint.address).toMatchObject({ ejected: false, failures: 0, ejections: 0 });
}

describe('streams that received messages are healthy, however they end (25 of each)', () => {
  it('server-stream subscriptions ended by their own deadline: 0 openings, 0 endpoint failures, the next stream admitted', async () => {
    const { fleet, pool, test, changes, ejections } = await healthyFleet();
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, () =>
        streamToEnd(test.ServerStream({ message: 's', count: 10_000, intervalMs: 20 }, { deadlineMs: SUBSCRIPTION_DEADLINE_MS })),
      ),
    );
    for (const { messages, error } of streams) {
      expect(messages).toBeGreaterThan(0);
      expect((error as { code?: number } | undefined)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    }
    expectNothingCounted(pool, fleet, changes, ejections);
    // The 25 streams were booked, as successes, against the endpoints they went to.
    const booked = channelOf(pool).endpoints.reduce((sum, e) => sum + e.attempts, 0);
    expect(booked).toBe(STREAMS + 3);
    const next = await streamToEnd(test.ServerStream({ message: 'next', count: 3 }));
    expect(next).toEqual({ messages: 3, error: undefined });
  });

  it('bidi streams ended by their own deadline: 0 openings, 0 endpoint failures, the next stream admitted', async () => {
    const { fleet, pool, test, changes, ejections } = await healthyFleet();
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, () => streamToEnd(test.Bidi(requests(20), { deadlineMs: SUBSCRIPTION_DEADLINE_MS }))),
    );
    for (const { messages, error } of streams) {
      expect(messages).toBeGreaterThan(0);
      expect((error as { code?: number } | undefined)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    }
    expectNothingCounted(pool, fleet, changes, ejections);
    expect(channelOf(pool).endpoints.reduce((sum, e) => sum + e.attempts, 0)).toBe(STREAMS + 3);
    const next = await streamToEnd(test.Bidi(['a', 'b'].map((message) => ({ message }))));
    expect(next).toEqual({ messages: 2, error: undefined });
  });

  it('server streams that got 3 messages then UNAVAILABLE: 0 openings, 0 endpoint failures, the next stream admitted', async () => {
    const { fleet, pool, test, changes, ejections } = await healthyFleet();
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, () => streamToEnd(test.ServerStream({ message: 's', count: 3, failCode: grpc.status.UNAVAILABLE }))),
    );
    for (const { messages, error } of streams) {
      expect(messages).toBe(3);
      expect((error as { code?: number } | undefined)?.code).toBe(grpc.status.UNAVAILABLE);
    }
    // Not retried: a stream that delivered a message is committed.
    expect(fleet.arrived()).toBe(STREAMS + 3);
    expectNothingCounted(pool, fleet, changes, ejections);
    const next = await streamToEnd(test.ServerStream({ message: 'next', count: 3 }));
    expect(next).toEqual({ messages: 3, error: undefined });
  });

  it('bidi streams that got 3 echoes then UNAVAILABLE: 0 openings, 0 endpoint failures', async () => {
    const { fleet, pool, test, changes, ejections } = await healthyFleet();
    const failing = { 'x-fail-after': '3', 'x-fail-code': String(grpc.status.UNAVAILABLE) };
    const streams = await Promise.all(Array.from({ length: STREAMS }, () => streamToEnd(test.Bidi(requests(0, 3), { metadata: failing }))));
    for (const { messages, error } of streams) {
      expect(messages).toBe(3);
      expect((error as { code?: number } | undefined)?.code).toBe(grpc.status.UNAVAILABLE);
    }
    expectNothingCounted(pool, fleet, changes, ejections);
  });

  it('control: the same 25 streams failing before any message do count, and open the circuit', async () => {
    // Without this, the rows above could pass because streams were not counted at all.
    const { pool, test, changes } = await healthyFleet();
    const failing = await Promise.all(
      Array.from({ length: STREAMS }, () =>
        streamToEnd(test.ServerStream({ message: 's', count: 3 }, { metadata: { 'x-fail-code': String(grpc.status.UNAVAILABLE) } })),
      ),
    );
    for (const { messages, error } of failing) {
      expect(messages).toBe(0);
      // UNAVAILABLE from the servers, or CircuitOpenError (code UNAVAILABLE) once the circuit opened.
      expect((error as { code?: number } | undefined)?.code).toBe(grpc.status.UNAVAILABLE);
    }
    expect(changes.filter((c) => c.state === 'open' && c.method === SERVER_STREAM)).toHaveLength(1);
    expect(channelOf(pool).endpoints.reduce((sum, e) => sum + e.failures, 0)).toBeGreaterThan(0);
  });
});

describe('a half-open probe that is a stream settles at its first message', () => {
  /** Opens the method's circuit with UNAVAILABLE answers, heals the method, and waits for half-open. */
  async function halfOpen(method: string) {
    const options: ChannelPoolOptions = {
      retry: false,
      breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeoutMs: 300 },
    };
    const setup = await healthyFleet(options);
    const { fleet, test, changes } = setup;
    for (const endpoint of fleet.endpoints) endpoint.failMethod(method, grpc.status.UNAVAILABLE);
    const failing =
      method === BIDI ? () => streamToEnd(test.Bidi([{ message: 'x' }])) : () => streamToEnd(test.ServerStream({ message: 'x', count: 1 }));
    for (let i = 0; i < 10 && !changes.some((c) => c.state === 'open'); i++) await failing();
    expect(changes.filter((c) => c.state === 'open').map((c) => c.method)).toEqual([method]);
    for (const endpoint of fleet.endpoints) endpoint.failMethod(method, undefined);
    // The reset timer runs late on a loaded machine, never early: wait for the state, not a time.
    for (let i = 0; i < 600 && !changes.some((c) => c.state === 'half-open'); i++) await sleep(50);
    expect(changes.at(-1)).toMatchObject({ method, state: 'half-open' });
    return setup;
  }

  it('a server-stream probe still delivering: 10 of 10 streams made meanwhile are admitted', async () => {
    const { test, changes, pool } = await halfOpen(SERVER_STREAM);
    const controller = new AbortController();
    const probe = test
      .ServerStream({ message: 'probe', count: 10_000, intervalMs: 50 }, { signal: controller.signal, deadlineMs: 60_000 })
      [Symbol.asyncIterator]();
    try {
      await expect(probe.next()).resolves.toMatchObject({ done: false });
      expect(changes.at(-1)).toMatchObject({ method: SERVER_STREAM, state: 'closed', reason: 'probe-succeeded' });
      const others = await Promise.all(Array.from({ length: 10 }, () => streamToEnd(test.ServerStream({ message: 'other', count: 2 }))));
      expect(others.filter((o) => o.messages === 2 && o.error === undefined)).toHaveLength(10);
      // The probe is still delivering all along.
      await expect(probe.next()).resolves.toMatchObject({ done: false });
      expect(channelOf(pool).breakers.find((b) => b.method === SERVER_STREAM)).toMatchObject({ state: 'closed' });
    } finally {
      controller.abort(new Error('done'));
      await probe.return?.().catch(() => undefined);
    }
  });

  it('a bidi probe still open: 10 of 10 streams made meanwhile are admitted', async () => {
    const { test, changes } = await halfOpen(BIDI);
    const controller = new AbortController();
    const probe = test.Bidi(requests(50), { signal: controller.signal, deadlineMs: 60_000 })[Symbol.asyncIterator]();
    try {
      await expect(probe.next()).resolves.toMatchObject({ done: false });
      expect(changes.at(-1)).toMatchObject({ method: BIDI, state: 'closed', reason: 'probe-succeeded' });
      const others = await Promise.all(Array.from({ length: 10 }, () => streamToEnd(test.Bidi([{ message: 'a' }, { message: 'b' }]))));
      expect(others.filter((o) => o.messages === 2 && o.error === undefined)).toHaveLength(10);
      await expect(probe.next()).resolves.toMatchObject({ done: false });
    } finally {
      controller.abort(new Error('done'));
      await probe.return?.().catch(() => undefined);
    }
  });
});
