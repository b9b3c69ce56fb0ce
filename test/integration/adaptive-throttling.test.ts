// Client-side adaptive throttling against a real overloaded server on loopback: the load the
// server gets once the throttle settles, and what a local rejection is (and is not) to retries,
// circuits and the endpoint books. Timing-free: the server's room is a share of the calls offered
// (counted by the test, not by a clock), the calls go one after another, and Math.random is an
// evenly spread sequence (overloaded-backend.ts), so the figures do not depend on a lucky draw.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChannelPool, StatusError, type AdaptiveThrottlingChange, type ChannelPoolOptions, type RetryEvent } from '../../src/index.js';
import { evenlySpreadRandom, startOverloadedBackend, type OverloadedBackend } from '../helpers/overloaded-backend.js';
import { TestServiceClient } from '../helpers/protos.js';
import { Registry } from 'prom-client';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';

let backend: OverloadedBackend | undefined;
let pool: ChannelPool | undefined;

beforeEach(() => {
  vi.spyOn(Math, 'random').mockImplementation(evenlySpreadRandom());
});

afterEach(async () => {
  vi.restoreAllMocks();
  await pool?.close({ graceMs: 0 });
  await backend?.close();
  pool = undefined;
  backend = undefined;
});

function newPool(options: ChannelPoolOptions): ChannelPool {
  pool = new ChannelPool(options);
  return pool;
}

/** Runs `fn`; returns the StatusError it rejected with, or undefined when it resolved. */
async function outcome(promise: Promise<unknown>): Promise<StatusError | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(StatusError);
    return error as StatusError;
  }
}

describe('adaptive throttling against a server that takes 10 % of the calls offered', () => {
  it('settles at about K (2) calls sent per call taken, and its rejections touch no circuit or retry', async () => {
    const OFFERED = 2_000;
    let offered = 0;
    // Room for one call in ten offered: a server at a tenth of the load it is asked for.
    // One address: the pool's picker (several endpoints) draws from Math.random too, and would
    // take its share of the evenly spread sequence (the endpoint books: the next test).
    backend = await startOverloadedBackend({ takes: () => backend!.accepted * 10 < offered });
    // The breaker counts only what reached the server: with the throttle on, the share of those
    // that fail falls toward 50 % (K 2), from about 80 % over the first few dozen (before the
    // throttle has seen enough), and is about 60 % once 200 calls are counted. Had the local
    // rejections counted as failures, 90 % of the calls would have failed and it would open.
    newPool({
      deadlineMs: 5_000,
      adaptiveThrottling: {},
      breaker: { errorThresholdPercentage: 80, volumeThreshold: 200, windowMs: 600_000, resetTimeoutMs: 600_000 },
    });
    const changes: AdaptiveThrottlingChange[] = [];
    pool!.onAdaptiveThrottling((change) => changes.push(change));
    const target = backend.addresses[0]!;
    const client = pool!.client(TestServiceClient, target);

    const throttled: Array<{ id: string; error: StatusError }> = [];
    let secondHalf = { received: 0, accepted: 0 };
    for (let i = 0; i < OFFERED; i++) {
      if (i === OFFERED / 2) secondHalf = { received: backend.received, accepted: backend.accepted };
      offered++;
      const id = `call-${i}`;
      const error = await outcome(client.Echo({ message: 'x' }, { metadata: { 'x-call-id': id } }));
      if (error?.throttled) throttled.push({ id, error });
      else if (error !== undefined) expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    }
    const received = backend.received - secondHalf.received;
    const accepted = backend.accepted - secondHalf.accepted;

    // Over the second half the server received at most 2.2 times what it took (K 2 and the
    // padding), and the throttle did not starve it either (it took all it had room for).
    expect(accepted).toBe(OFFERED / 2 / 10);
    expect(received / accepted).toBeLessThanOrEqual(2.2);
    expect(received / accepted).toBeGreaterThanOrEqual(1.8);

    // Local rejections: UNAVAILABLE, flagged, no attempt, never seen by the server.
    expect(throttled.length).toBe(OFFERED - backend.received);
    for (const { id, error } of throttled) {
      expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, throttled: true, attempts: 0 });
      expect(backend.attemptsOf(id)).toBe(0);
    }
    const channel = pool!.stats().perChannel[0]!;
    expect(channel.adaptiveThrottling).toMatchObject({ rejected: throttled.length, shedding: true });
    expect(channel.adaptiveThrottling!.rejectProbability).toBeGreaterThan(0.7);
    expect(channel.adaptiveThrottling!.rejectProbability).toBeLessThanOrEqual(0.8);
    // The circuits (the method's and the target's): closed, never refused a call.
    expect(channel.breakers.length).toBe(2);
    for (const breaker of channel.breakers) expect([breaker.state, breaker.rejected, breaker.opened]).toEqual(['closed', 0, 0]);
    // The retry bucket and budget: a local rejection is an UNAVAILABLE, which the default policy
    // retries, yet none took a token or was retried (RESOURCE_EXHAUSTED from the server is not
    // retried by default either).
    expect(channel).toMatchObject({ retries: 0, throttledRetries: 0, budgetRetries: 0, retryTokens: 10 });
    // The event: shedding began once (and never stopped: the server stayed overloaded).
    expect(changes.map((c) => [c.target, c.shedding])).toEqual([[target, true]]);
  });
});

describe('the endpoint books', () => {
  it('count attempts only for the calls that reached an endpoint: local rejections are not in them', async () => {
    let offered = 0;
    backend = await startOverloadedBackend({ takes: () => backend!.accepted * 10 < offered, ports: 2 });
    newPool({ deadlineMs: 5_000, adaptiveThrottling: {}, breaker: false });
    const client = pool!.client(TestServiceClient, `ipv4:${backend.addresses.join(',')}`);
    let throttled = 0;
    for (let i = 0; i < 300; i++) {
      offered++;
      if ((await outcome(client.Echo({ message: 'x' })))?.throttled) throttled++;
    }
    const { endpoints } = pool!.stats().perChannel[0]!;
    expect(endpoints).toHaveLength(2);
    expect(throttled).toBeGreaterThan(100);
    expect(throttled + backend.received).toBe(300);
    expect(endpoints.reduce((sum, e) => sum + e.attempts, 0)).toBe(backend.received);
  });
});

describe('a local rejection is never retried', () => {
  it('UNAVAILABLE from the server is retried, a throttled UNAVAILABLE never: the server sees 0 attempts of it', async () => {
    backend = await startOverloadedBackend({ takes: () => false, refuseCode: grpc.status.UNAVAILABLE });
    // No retry throttling: every call that reaches the server makes its 3 attempts.
    newPool({
      deadlineMs: 5_000,
      adaptiveThrottling: {},
      retryThrottling: false,
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1 },
      breaker: false,
    });
    const retries: RetryEvent[] = [];
    pool!.onRetry((event) => retries.push(event));
    const client = pool!.client(TestServiceClient, backend.addresses[0]!);
    const CALLS = 100;
    let throttledCalls = 0;
    for (let i = 0; i < CALLS; i++) {
      const id = `call-${i}`;
      const error = await outcome(client.Echo({ message: 'x' }, { metadata: { 'x-call-id': id } }));
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      if (error!.throttled) {
        throttledCalls++;
        expect(error!.attempts).toBe(0);
        expect(backend.attemptsOf(id)).toBe(0);
      } else {
        expect(error!.attempts).toBe(3);
        expect(backend.attemptsOf(id)).toBe(3);
      }
    }
    const sent = CALLS - throttledCalls;
    expect(throttledCalls).toBeGreaterThan(CALLS / 2);
    expect(backend.received).toBe(3 * sent);
    // Retries only for the calls that reached the server: 2 each.
    expect(retries.length).toBe(2 * sent);
    expect(pool!.stats().perChannel[0]).toMatchObject({ retries: 2 * sent, started: CALLS, failed: CALLS });
  });

  it('off by default: the same server gets every call', async () => {
    backend = await startOverloadedBackend({ takes: () => false });
    newPool({ deadlineMs: 5_000, breaker: false });
    const client = pool!.client(TestServiceClient, backend.addresses[0]!);
    for (let i = 0; i < 50; i++) {
      const error = await outcome(client.Echo({ message: 'x' }));
      expect(error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, throttled: false });
    }
    expect(backend.received).toBe(50);
    expect(pool!.stats().perChannel[0]!.adaptiveThrottling).toBeUndefined();
  });

  it('a client turns it on for its own channel: a client of the same target without it has another channel, unthrottled', async () => {
    backend = await startOverloadedBackend({ takes: () => false });
    newPool({ deadlineMs: 5_000, breaker: false });
    const throttledClient = pool!.client(TestServiceClient, backend.addresses[0]!, { adaptiveThrottling: { maxRejectPercent: 100 } });
    const plain = pool!.client(TestServiceClient, backend.addresses[0]!);
    let throttled = 0;
    for (let i = 0; i < 100; i++) if ((await outcome(throttledClient.Echo({ message: 'x' })))?.throttled) throttled++;
    for (let i = 0; i < 20; i++) expect((await outcome(plain.Echo({ message: 'x' })))?.throttled).toBe(false);
    expect(throttled).toBeGreaterThan(50);
    expect(backend.received).toBe(100 - throttled + 20);
    const stats = pool!.stats();
    expect(stats.channels).toBe(2);
    expect(stats.perChannel.map((c) => c.adaptiveThrottling?.rejected)).toEqual([throttled, undefined]);
  });
});

describe('adaptive throttling in Prometheus', () => {
  it('counts local rejections per target and shows the reject probability; refused_total has reason "throttle"', async () => {
    backend = await startOverloadedBackend({ takes: () => false });
    newPool({ deadlineMs: 5_000, breaker: false, adaptiveThrottling: {} });
    const registry = new Registry();
    using _ = prometheusMetrics(pool!, { registry });
    const client = pool!.client(TestServiceClient, backend.addresses[0]!);
    let throttled = 0;
    for (let i = 0; i < 100; i++) if ((await outcome(client.Echo({ message: 'x' })))?.throttled) throttled++;
    expect(throttled).toBeGreaterThan(50);
    const text = await registry.metrics();
    const target = backend.addresses[0]!;
    const p = pool!.stats().perChannel[0]!.adaptiveThrottling!.rejectProbability;
    expect(text).toContain(`grpc_client_adaptive_throttling_rejected_total{grpc_target="${target}"} ${throttled}\n`);
    expect(text).toContain(`grpc_client_adaptive_throttling_reject_probability{grpc_target="${target}"} ${p}\n`);
    expect(text).toMatch(new RegExp(`grpc_client_refused_total\\{[^}]*reason="throttle"\\} ${throttled}\n`));
  });
});

describe('adaptiveThrottling options', () => {
  it('a bad value is refused by the pool and by pool.client(), naming the option and the value, and the pool stays usable', async () => {
    expect(() => new ChannelPool({ adaptiveThrottling: { acceptMultiplier: 0 } })).toThrow(
      /adaptiveThrottling\.acceptMultiplier must be a number from 1 to 100 \(requests per accept\), got 0/,
    );
    backend = await startOverloadedBackend({ takes: () => true });
    newPool({ deadlineMs: 5_000 });
    expect(() => pool!.client(TestServiceClient, backend!.addresses[0]!, { adaptiveThrottling: { windowMs: 100 } })).toThrow(
      /adaptiveThrottling\.windowMs must be an integer number of milliseconds from 1000 to 600000, got 100/,
    );
    await expect(pool!.client(TestServiceClient, backend.addresses[0]!).Echo({ message: 'ok' })).resolves.toMatchObject({ message: 'ok' });
    expect(backend.received).toBe(1);
  });
});
