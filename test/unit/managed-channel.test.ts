import { connectivityState, credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { Breaker } from '../../src/channel/circuit-breaker.js';
import { ManagedChannel, type ChannelContext } from '../../src/channel/managed-channel.js';
import { breakerKey } from '../../src/channel/channel-breakers.js';
import type { InFlight } from '../../src/channel/in-flight.js';
import type { ChannelReplaced, ChannelStateChange } from '../../src/channel/channel-stats.js';
import type { BreakerStateChange } from '../../src/channel/circuit-breaker.js';
import { resolveBreaker, type BreakerOptions } from '../../src/config/breaker-options.js';
import type { Resolved } from '../../src/config/check-helpers.js';
import { channelContext, fakeFactory, type FakeFactory } from '../helpers/fake-channel.js';
import { resolveAdaptiveThrottling } from '../../src/config/adaptive-throttling-options.js';
import { EventSource } from '../../src/events/events.js';
import type { AdaptiveThrottleSettings, AdaptiveThrottlingChange } from '../../src/channel/adaptive-throttle.js';

const TARGET = 'fake.example:50051';
const INSECURE: ChannelCredentials = credentials.createInsecure();

let fake: FakeFactory;
let context: ChannelContext;
let channel: ManagedChannel;

function makeChannel(
  overrides: Partial<ChannelContext> = {},
  options: Record<string, unknown> = { 'grpc.keepalive_time_ms': 30_000 },
): ManagedChannel {
  context = channelContext(fake.factory, overrides);
  return new ManagedChannel(TARGET, INSECURE, options, context);
}

/** A call in flight; `settleOn` says what makes it settle (through `settle()`), if anything. */
function fakeCall(on: ManagedChannel, settleOn: 'poolClosing' | 'cancel' | 'never' = 'cancel', ok = false) {
  const call: InFlight & { cancelForClose: ReturnType<typeof vi.fn>; poolClosing: ReturnType<typeof vi.fn> } = {
    cancelForClose: vi.fn(() => {
      // grpc-js answers cancel() with a CANCELLED status a little later, never synchronously.
      if (settleOn === 'cancel') queueMicrotask(() => on.settle(call, false));
    }),
    poolClosing: vi.fn(() => {
      if (settleOn === 'poolClosing') on.settle(call, ok);
      return false;
    }),
  };
  on.track(call);
  return call;
}

async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await vi.advanceTimersByTimeAsync(0);
  return settled;
}

beforeEach(() => {
  vi.useFakeTimers();
  fake = fakeFactory();
  channel = makeChannel();
});

afterEach(() => {
  channel.close();
  context.rotation.close();
  vi.useRealTimers();
});

describe('construction', () => {
  test('makes one grpc-js channel through the factory, with the target, credentials and options', () => {
    expect(fake.made).toHaveLength(1);
    expect(fake.made[0]).toMatchObject({ target: TARGET, credentials: INSECURE, options: { 'grpc.keepalive_time_ms': 30_000 } });
    expect(channel.client).toBe(fake.made[0]?.client);
    expect(channel.generation).toBe(0);
  });

  test('watches the connectivity of its channel without asking it to connect', () => {
    expect(fake.last.watchers).toBe(1);
    expect(channel.state()).toBe('idle');
    fake.last.setState(connectivityState.READY);
    expect(channel.state()).toBe('ready');
    expect(channel.snapshot().state).toBe('ready');
  });

  test('grpcOwnsRetries follows a service config with a retry policy', () => {
    const serviceConfig = JSON.stringify({ methodConfig: [{ name: [{}], retryPolicy: { maxAttempts: 2 } }] });
    expect(channel.grpcOwnsRetries).toBe(false);
    channel.close();
    context.rotation.close();
    channel = makeChannel({}, { 'grpc.service_config': serviceConfig });
    expect(channel.grpcOwnsRetries).toBe(true);
    expect(channel.snapshot().grpcOwnsRetries).toBe(true);
  });
});

describe('connectivity events', () => {
  test('every change of state is emitted once, with the previous state', () => {
    const changes: ChannelStateChange[] = [];
    context.onChannelStateChange.subscribe((change) => changes.push(change));
    fake.last.setState(connectivityState.CONNECTING);
    fake.last.setState(connectivityState.READY);
    fake.last.setState(connectivityState.TRANSIENT_FAILURE);
    expect(changes).toEqual([
      { target: TARGET, previous: 'idle', state: 'connecting' },
      { target: TARGET, previous: 'connecting', state: 'ready' },
      { target: TARGET, previous: 'ready', state: 'transient-failure' },
    ]);
  });

  test('nothing is followed after close()', () => {
    const changes: ChannelStateChange[] = [];
    context.onChannelStateChange.subscribe((change) => changes.push(change));
    const grpcChannel = fake.last;
    channel.close();
    expect(grpcChannel.closed).toBe(true);
    expect(changes).toEqual([]);
    expect(grpcChannel.watchers).toBe(0);
  });
});

describe('calls', () => {
  test('track() and settle() keep the counters of snapshot()', () => {
    const a = fakeCall(channel);
    const b = fakeCall(channel);
    const c = fakeCall(channel);
    expect(channel.snapshot()).toMatchObject({ inFlight: 3, started: 3, succeeded: 0, failed: 0 });
    channel.settle(a, true);
    channel.settle(b, false);
    expect(channel.snapshot()).toMatchObject({ inFlight: 1, started: 3, succeeded: 1, failed: 1 });
    expect(channel.inFlight).toBe(1);
    channel.settle(c, true);
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, started: 3, succeeded: 2, failed: 1 });
  });

  test('settling a call twice, or one never tracked, counts nothing', () => {
    const a = fakeCall(channel);
    channel.settle(a, true);
    channel.settle(a, false);
    channel.settle({ cancelForClose() {}, poolClosing: () => false }, false);
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, started: 1, succeeded: 1, failed: 0 });
  });

  test('the retry throttle: retryable failures take tokens, refusals are counted, successes give tokens back', () => {
    expect(channel.snapshot().retryTokens).toBe(10);
    expect(channel.retryThrottled()).toBe(false);
    for (let i = 0; i < 4; i++) channel.attemptFailedRetryably();
    expect(channel.snapshot().retryTokens).toBe(6);
    expect(channel.retryThrottled()).toBe(false);
    channel.attemptFailedRetryably();
    // 5 of 10: retries need more than half.
    expect(channel.retryThrottled()).toBe(true);
    expect(channel.retryThrottled()).toBe(true);
    expect(channel.snapshot()).toMatchObject({ retryTokens: 5, throttledRetries: 2 });
    channel.attemptSucceeded();
    expect(channel.snapshot().retryTokens).toBe(5.1);
    expect(channel.retryThrottled()).toBe(false);
    expect(channel.snapshot().throttledRetries).toBe(2);
  });

  test('the retry budget pays for what the bucket refuses, once a call has succeeded, and gets it back if the call succeeds', () => {
    channel.close();
    context.rotation.close();
    channel = makeChannel({ budget: { ttlMs: 10_000, retryPercent: 20, minRetriesPerSec: 10 } });
    // A fresh channel: the bucket alone. Its budget holds nothing before a success.
    for (let i = 0; i < 5; i++) channel.attemptFailedRetryably();
    expect(channel.snapshot()).toMatchObject({ retryTokens: 5, retryBudget: 0 });
    expect(channel.retryThrottled()).toBe(true);
    expect(channel.retryAdmitted()).toBe(false);
    // One success: 5.1 tokens in the bucket, which pays for the next retry itself.
    channel.attemptSucceeded();
    expect(channel.snapshot()).toMatchObject({ retryTokens: 5.1, retryBudget: 100.2 });
    expect(channel.retryThrottled()).toBe(false);
    expect(channel.retryAdmitted()).toBe(false);
    // Bucket at 4.1: the budget pays (its reserve counts now that a call succeeded).
    channel.attemptFailedRetryably();
    expect(channel.retryThrottled()).toBe(false);
    expect(channel.retryAdmitted()).toBe(true);
    expect(channel.snapshot()).toMatchObject({ budgetRetries: 1, retryBudget: 99.2, throttledRetries: 1 });
    // The call succeeds on that retry: its bucket token and its budget token come back.
    channel.attemptSucceeded(1, true);
    expect(channel.snapshot().retryTokens).toBe(5.2);
    expect(channel.snapshot().retryBudget).toBeCloseTo(100.4, 10);
    // 100 retries later with no success (and none of them failed yet), the budget is spent, and
    // the bucket refuses too.
    for (let i = 0; i < 100; i++) {
      channel.attemptFailedRetryably();
      expect(channel.retryAdmitted()).toBe(true);
    }
    expect(channel.retryThrottled()).toBe(true);
    expect(channel.retryAdmitted()).toBe(false);
    expect(channel.snapshot()).toMatchObject({ budgetRetries: 101, throttledRetries: 2 });
  });

  test('the retry budget stops paying once more of its retries failed than succeeded', () => {
    channel.close();
    context.rotation.close();
    channel = makeChannel({ budget: { ttlMs: 10_000, retryPercent: 20, minRetriesPerSec: 10 } });
    channel.attemptSucceeded();
    for (let i = 0; i < 5; i++) channel.attemptFailedRetryably();
    expect(channel.retryAdmitted()).toBe(true);
    // That retry failed: 1 failed, 0 succeeded. The budget holds 99 tokens and pays for none.
    channel.attemptFailedRetryably(true);
    expect(channel.snapshot().retryBudget).toBe(99.2);
    expect(channel.retryThrottled()).toBe(true);
    expect(channel.retryAdmitted()).toBe(false);
    expect(channel.snapshot()).toMatchObject({ budgetRetries: 1, throttledRetries: 1 });
  });

  test('without throttling there is no budget either: nothing to pay for', () => {
    channel.close();
    context.rotation.close();
    channel = makeChannel({ throttling: false, budget: { ttlMs: 10_000, retryPercent: 20, minRetriesPerSec: 10 } });
    channel.attemptSucceeded();
    expect(channel.retryAdmitted()).toBe(false);
    expect(channel.snapshot()).toMatchObject({ retryTokens: undefined, retryBudget: undefined, budgetRetries: 0 });
  });

  test('retryStarted() counts retries', () => {
    channel.retryStarted();
    channel.retryStarted();
    expect(channel.snapshot().retries).toBe(2);
  });

  test('without throttling, retries are never refused and no tokens are reported', () => {
    channel.close();
    context.rotation.close();
    channel = makeChannel({ throttling: false });
    for (let i = 0; i < 20; i++) channel.attemptFailedRetryably();
    expect(channel.retryThrottled()).toBe(false);
    expect(channel.snapshot()).toMatchObject({ retryTokens: undefined, throttledRetries: 0 });
  });
});

describe('adaptive throttling', () => {
  function throttled(): { channel: ManagedChannel; changes: AdaptiveThrottlingChange[] } {
    const onAdaptiveThrottling = new EventSource<AdaptiveThrottlingChange>('onAdaptiveThrottling');
    const changes: AdaptiveThrottlingChange[] = [];
    onAdaptiveThrottling.subscribe((change) => changes.push(change));
    context = channelContext(fake.factory, { onAdaptiveThrottling });
    const settings = resolveAdaptiveThrottling({}) as AdaptiveThrottleSettings;
    return { channel: new ManagedChannel(TARGET, INSECURE, {}, context, false, false, settings), changes };
  }

  test('off by default: every first attempt is admitted, stats say undefined, never shedding', () => {
    for (let i = 0; i < 50; i++) channel.attemptFailed(14, false);
    expect(channel.admitsFirstAttempt()).toBe(true);
    expect(channel.isShedding).toBe(false);
    expect(channel.snapshot().adaptiveThrottling).toBeUndefined();
  });

  test("hears failures by their code, successes from attemptSucceeded(), and reports shedding with the channel's target", () => {
    channel.close();
    channel = throttled().channel;
    channel.attemptFailed(14, false); // UNAVAILABLE: a refusal
    channel.attemptFailed(8, false); // RESOURCE_EXHAUSTED: a refusal
    channel.attemptFailed(4, false); // DEADLINE_EXCEEDED: neither
    channel.attemptFailed(14, true); // ours: neither
    channel.attemptFailed(5, false); // NOT_FOUND: an accept
    channel.attemptSucceeded();
    expect(channel.snapshot().adaptiveThrottling).toMatchObject({ requests: 4, accepts: 2, rejected: 0, rejectProbability: 0 });
  });

  test('sheds once refusals dominate: isShedding, the event with the target, no call admitted when the draw is 0', () => {
    channel.close();
    // Before the channel is made: its throttle keeps the random source it was given.
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const made = throttled();
    channel = made.channel;
    for (let i = 0; i < 30; i++) channel.attemptFailed(14, false);
    try {
      expect(channel.admitsFirstAttempt()).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
    expect(channel.isShedding).toBe(true);
    // 30 refusals, K 2, padding 8: 30 / 38; the event counts the rejection it reports.
    expect(made.changes).toEqual([{ target: TARGET, shedding: true, rejectProbability: 30 / 38, requests: 31, accepts: 0, rejected: 1 }]);
    expect(channel.snapshot().adaptiveThrottling).toMatchObject({ rejected: 1, requests: 31, shedding: true });
  });
});

describe('breakers', () => {
  // scope 'channel' set explicitly: the default became 'method' (issue #11).
  const options = resolveBreaker({
    volumeThreshold: 1,
    resetTimeoutMs: 1_000,
    windowMs: 1_000,
    scope: 'channel',
  }) as Resolved<BreakerOptions>;

  test("one breaker per channel for scope 'channel', whatever the method", () => {
    const a = breakerOf(channel, '/pkg.Svc/A', options);
    expect(breakerOf(channel, '/pkg.Svc/B', options)).toBe(a);
    expect(channel.snapshot().breakers).toEqual([{ method: undefined, state: 'closed', rejected: 0, opened: 0, nextProbeAt: undefined }]);
  });

  test("one per method for scope 'method'; different options make a different breaker", () => {
    const perMethod = { ...options, scope: 'method' } as const;
    const a = breakerOf(channel, '/pkg.Svc/A', perMethod);
    expect(breakerOf(channel, '/pkg.Svc/B', perMethod)).not.toBe(a);
    expect(breakerOf(channel, '/pkg.Svc/A', perMethod)).toBe(a);
    expect(breakerOf(channel, '/pkg.Svc/A', { ...options, volumeThreshold: 7 })).not.toBe(breakerOf(channel, '/pkg.Svc/A', options));
    expect(channel.snapshot().breakers.map((b) => b.method)).toEqual(['/pkg.Svc/A', '/pkg.Svc/B', undefined, undefined]);
  });

  test('state changes are emitted on onBreakerStateChange with the target', () => {
    const changes: BreakerStateChange[] = [];
    context.onBreakerStateChange.subscribe((change) => changes.push(change));
    const breaker = breakerOf(channel, '/pkg.Svc/A', options);
    breaker.record('failure', 1);
    expect(changes).toEqual([{ target: TARGET, method: undefined, state: 'open', previous: 'closed', reason: 'error-threshold' }]);
  });

  test('close() shuts the breakers down: their reset timers are cleared', () => {
    breakerOf(channel, '/pkg.Svc/A', options).record('failure', 1);
    expect(vi.getTimerCount()).toBe(2);
    channel.close();
    expect(channel.snapshot().breakers).toEqual([]);
    context.rotation.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('drain()', () => {
  test('calls poolClosing() on every call; a call waiting to retry settles at once', async () => {
    const waiting = fakeCall(channel, 'poolClosing');
    const running = fakeCall(channel, 'cancel');
    const drain = channel.drain(1_000);
    expect(waiting.poolClosing).toHaveBeenCalledTimes(1);
    expect(running.poolClosing).toHaveBeenCalledTimes(1);
    expect(channel.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(drain).resolves.toEqual({ drained: 1, cancelled: 1 });
    expect(waiting.cancelForClose).not.toHaveBeenCalled();
  });

  test('calls that settle within graceMs are drained; the rest are cancelled with graceMs once it is over', async () => {
    const quick = fakeCall(channel);
    const slow = fakeCall(channel);
    const stuck = fakeCall(channel);
    setTimeout(() => channel.settle(quick, true), 100);
    setTimeout(() => channel.settle(slow, true), 900);
    const drain = channel.drain(1_000);
    await vi.advanceTimersByTimeAsync(999);
    expect(stuck.cancelForClose).not.toHaveBeenCalled();
    expect(await isSettled(drain)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(stuck.cancelForClose).toHaveBeenCalledExactlyOnceWith(1_000);
    expect(quick.cancelForClose).not.toHaveBeenCalled();
    expect(slow.cancelForClose).not.toHaveBeenCalled();
    await expect(drain).resolves.toEqual({ drained: 2, cancelled: 1 });
    expect(channel.snapshot()).toMatchObject({ inFlight: 0, succeeded: 2, failed: 1 });
  });

  test('resolves as soon as the last call settles within the grace period, and leaves no timer', async () => {
    const call = fakeCall(channel);
    setTimeout(() => channel.settle(call, true), 50);
    const drain = channel.drain(10_000);
    await vi.advanceTimersByTimeAsync(50);
    expect(await isSettled(drain)).toBe(true);
    await expect(drain).resolves.toEqual({ drained: 1, cancelled: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  test('waits for the cancelled calls to settle before resolving', async () => {
    const call = fakeCall(channel, 'never');
    const drain = channel.drain(0);
    expect(call.cancelForClose).toHaveBeenCalledWith(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await isSettled(drain)).toBe(false);
    channel.settle(call, false);
    await expect(drain).resolves.toEqual({ drained: 0, cancelled: 1 });
  });

  test('graceMs 0 cancels every call still running at once, without a timer', async () => {
    const a = fakeCall(channel);
    const b = fakeCall(channel);
    const drain = channel.drain(0);
    expect(a.cancelForClose).toHaveBeenCalledExactlyOnceWith(0);
    expect(b.cancelForClose).toHaveBeenCalledExactlyOnceWith(0);
    expect(vi.getTimerCount()).toBe(0);
    await expect(drain).resolves.toEqual({ drained: 0, cancelled: 2 });
  });

  test('a channel with nothing in flight drains at once', async () => {
    await expect(channel.drain(10_000)).resolves.toEqual({ drained: 0, cancelled: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('the connect watchdog', () => {
  beforeEach(() => {
    channel.close();
    context.rotation.close();
    fake = fakeFactory();
    channel = makeChannel({ connectTimeoutMs: 1_000 });
  });

  test('a channel stuck CONNECTING for connectTimeoutMs is replaced by one with a local subchannel pool', async () => {
    const replaced: ChannelReplaced[] = [];
    context.onChannelReplaced.subscribe((event) => replaced.push(event));
    const stuck = fake.last;
    const stuckClient = channel.client;
    stuck.setState(connectivityState.CONNECTING);
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.made).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.made).toHaveLength(2);
    expect(fake.made[1]).toMatchObject({
      target: TARGET,
      credentials: INSECURE,
      options: { 'grpc.keepalive_time_ms': 30_000, 'grpc.use_local_subchannel_pool': 1 },
    });
    expect(stuck.closed).toBe(true);
    expect(fake.last.closed).toBe(false);
    expect(channel.client).toBe(fake.made[1]?.client);
    expect(channel.client).not.toBe(stuckClient);
    expect(channel.generation).toBe(1);
    expect(channel.snapshot().replacements).toBe(1);
    expect(replaced).toEqual([{ target: TARGET, reason: 'connect-timeout', connectingMs: 1_000, replacements: 1 }]);
    // The user's options object is not changed.
    expect(fake.made[0]?.options).not.toHaveProperty('grpc.use_local_subchannel_pool');
  });

  test('the new channel is watched (and timed) in its turn; the old one is not', async () => {
    const changes: ChannelStateChange[] = [];
    context.onChannelStateChange.subscribe((change) => changes.push(change));
    fake.last.setState(connectivityState.CONNECTING);
    await vi.advanceTimersByTimeAsync(1_000);
    const second = fake.last;
    expect(second.watchers).toBe(1);
    // The fresh channel is idle: a state change from connecting.
    expect(changes.at(-1)).toEqual({ target: TARGET, previous: 'connecting', state: 'idle' });
    expect(channel.state()).toBe('idle');
    second.setState(connectivityState.CONNECTING);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.made).toHaveLength(3);
    expect(channel.generation).toBe(2);
    expect(second.closed).toBe(true);
  });

  test('leaving CONNECTING in time replaces nothing', async () => {
    fake.last.setState(connectivityState.CONNECTING);
    await vi.advanceTimersByTimeAsync(900);
    fake.last.setState(connectivityState.READY);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.made).toHaveLength(1);
    expect(channel.generation).toBe(0);
  });

  test('close() stops the watchdog: no timer is left, and nothing is replaced', async () => {
    fake.last.setState(connectivityState.CONNECTING);
    expect(vi.getTimerCount()).toBe(1);
    channel.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.made).toHaveLength(1);
  });

  test('without a connect timeout, a channel may stay CONNECTING', async () => {
    channel.close();
    fake = fakeFactory();
    channel = makeChannel({ connectTimeoutMs: false });
    fake.last.setState(connectivityState.CONNECTING);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.made).toHaveLength(1);
    expect(channel.state()).toBe('connecting');
  });
});

/** The channel's breaker for a method under these options, keyed as a bound method keys it. */
function breakerOf(
  channel: { breakerFor(key: string, method: string, options: Resolved<BreakerOptions>): Breaker },
  method: string,
  options: Resolved<BreakerOptions>,
): Breaker {
  return channel.breakerFor(breakerKey(method, options), method, options);
}
