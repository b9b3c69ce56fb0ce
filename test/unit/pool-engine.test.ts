import { connectivityState, credentials } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { Breaker } from '../../src/channel/circuit-breaker.js';
import { breakerKey } from '../../src/channel/channel-breakers.js';
import type { InFlight } from '../../src/channel/in-flight.js';
import { resolveBreaker, type BreakerOptions } from '../../src/config/breaker-options.js';
import { poolSettings } from '../../src/config/pool-options.js';
import { KEEPALIVE_PRESETS } from '../../src/channel/keepalive-presets.js';
import { PoolEngine } from '../../src/pool/pool-engine.js';
import { parseTarget } from '../../src/channel/target.js';
import type { Resolved } from '../../src/config/check-helpers.js';
import { fakeFactory, type FakeFactory } from '../helpers/fake-channel.js';

const A = parseTarget('a.example:50051');
const B = parseTarget('b.example:50051');

let fake: FakeFactory;
let pool: PoolEngine;

function makePool(options: unknown = {}): PoolEngine {
  return new PoolEngine({ ...poolSettings(options), factory: fake.factory });
}

/** A call in flight that settles (failed) soon after it is cancelled, or with `settle(ok)`. */
function fakeCall(channel: ReturnType<PoolEngine['channelFor']>) {
  const call: InFlight & { settle(ok: boolean): void; cancelForClose: ReturnType<typeof vi.fn> } = {
    cancelForClose: vi.fn(() => queueMicrotask(() => channel.settle(call, false))),
    poolClosing: () => false,
    settle: (ok) => channel.settle(call, ok),
  };
  channel.track(call);
  return call;
}

beforeEach(() => {
  vi.useFakeTimers();
  fake = fakeFactory();
  pool = makePool();
});

afterEach(async () => {
  await pool.close({ graceMs: 0 });
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('poolSettings()', () => {
  test('applies the defaults', () => {
    const settings = poolSettings(undefined);
    expect(settings).toMatchObject({
      policy: { deadlineMs: 10_000, idempotent: false },
      channelOptions: { 'grpc.service_config_disable_resolution': 1 },
      breakerOptions: {},
      throttling: { maxTokens: 10, tokenRatio: 0.1 },
      budget: { ttlMs: 10_000, retryPercent: 20, minRetriesPerSec: 10 },
      connectTimeoutMs: 20_000,
    });
    expect(settings.factory).toBeUndefined();
  });

  test('keeps what the user set, false included', () => {
    const settings = poolSettings({ breaker: false, retryThrottling: false, retryBudget: false, connectTimeoutMs: false, deadlineMs: 500 });
    expect(settings).toMatchObject({
      breakerOptions: false,
      throttling: false,
      budget: false,
      connectTimeoutMs: false,
      policy: { deadlineMs: 500 },
    });
  });

  test('throws naming a bad option', () => {
    expect(() => poolSettings({ connectTimeoutMs: -1 })).toThrow(RangeError);
    expect(() => poolSettings({ connectTimeoutMs: -1 })).toThrow(/connectTimeoutMs/);
    expect(() => poolSettings({ nope: 1 })).toThrow(TypeError);
  });
});

describe('keepalive by default (issue 19: a stream on a silent connection, without too_many_pings)', () => {
  // gRFC A8 servers (grpc-go, grpc-java, C-core) allow one ping per 5 minutes by default, and grpc-js
  // pings every keepalive_time_ms only while calls are open; a silent connection is left at the
  // next ping plus keepalive_timeout_ms at the latest. test/chaos/keepalive-streams.test.ts proves
  // both against an A8-enforcing peer at scale.
  const A8_MIN_PING_MS = 5 * 60_000;
  const GOAL_MS = 6.5 * 60_000;

  test('every channel gets a 6-minute keepalive, 20 s to answer, and no permit_without_calls', () => {
    pool.channelFor(A, undefined, undefined);
    const options = fake.made[0]!.options;
    expect(options).toMatchObject({ 'grpc.keepalive_time_ms': 360_000, 'grpc.keepalive_timeout_ms': 20_000 });
    expect(options['grpc.keepalive_permit_without_calls']).toBeUndefined();
    const time = options['grpc.keepalive_time_ms'] as number;
    const timeout = options['grpc.keepalive_timeout_ms'] as number;
    // Never sooner than an A8 server allows; a silent connection found within 6.5 minutes.
    expect(time).toBeGreaterThan(A8_MIN_PING_MS);
    expect(time + timeout).toBeLessThanOrEqual(GOAL_MS);
  });

  test("the user's keepalive keys win, key by key, pool-wide or per client; -1 turns it off", () => {
    const tuned = makePool({ channelOptions: { 'grpc.keepalive_time_ms': 10_000 } });
    tuned.channelFor(A, undefined, undefined);
    expect(fake.made.at(-1)!.options).toMatchObject({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 20_000 });
    pool.channelFor(B, undefined, { 'grpc.keepalive_time_ms': -1 });
    expect(fake.made.at(-1)!.options['grpc.keepalive_time_ms']).toBe(-1);
    return tuned.close({ graceMs: 0 });
  });

  test('the anyServer preset is the default', () => {
    expect(poolSettings(undefined).channelOptions).toMatchObject(KEEPALIVE_PRESETS.anyServer);
  });
});

describe('channelFor()', () => {
  test('shares one channel for the same target, options and (insecure) credentials', () => {
    const first = pool.channelFor(A, credentials.createInsecure(), { 'grpc.keepalive_time_ms': 1_000 });
    const second = pool.channelFor(A, credentials.createInsecure(), { 'grpc.keepalive_time_ms': 1_000 });
    expect(second).toBe(first);
    expect(fake.made).toHaveLength(1);
  });

  test("the channel gets the pool's channel options under the caller's", () => {
    pool.channelFor(A, undefined, { 'grpc.keepalive_time_ms': 1_000 });
    expect(fake.made[0]).toMatchObject({
      target: 'a.example:50051',
      options: { 'grpc.service_config_disable_resolution': 1, 'grpc.keepalive_time_ms': 1_000 },
    });
  });

  test('separate channels for different options or targets', () => {
    const base = pool.channelFor(A, undefined, undefined);
    expect(pool.channelFor(A, undefined, { 'grpc.keepalive_time_ms': 1_000 })).not.toBe(base);
    expect(pool.channelFor(B, undefined, undefined)).not.toBe(base);
    expect(pool.channelFor(A, undefined, {})).toBe(base);
    expect(fake.made).toHaveLength(3);
  });

  test('one default credentials object per kind: TLS channels to one target are shared', () => {
    const tls = parseTarget('https://a.example');
    const first = pool.channelFor(tls, undefined, undefined);
    expect(pool.channelFor(tls, undefined, undefined)).toBe(first);
    expect(first.credentials._isSecure()).toBe(true);
    expect(pool.channelFor(A, undefined, undefined).credentials._isSecure()).toBe(false);
  });

  test('distinct TLS credentials get distinct channels; past 8 of them, one warning', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const channels = new Set();
    for (let i = 0; i < 8; i++) channels.add(pool.channelFor(A, credentials.createSsl(), undefined));
    expect(channels.size).toBe(8);
    expect(warn).not.toHaveBeenCalled();
    pool.channelFor(A, credentials.createSsl(), undefined);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatch(/9 channels to a\.example:50051 differ only by their credentials/);
    expect(warn.mock.calls[0]?.[1]).toMatchObject({ code: 'RESILIENT_GRPC_CREDENTIALS_PER_CALL', type: 'ResilientGrpcWarning' });
    pool.channelFor(A, credentials.createSsl(), undefined);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(pool.stats().channels).toBe(10);
  });

  test('the same TLS credentials object is one channel, however often it is used', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const tls = credentials.createSsl();
    for (let i = 0; i < 20; i++) pool.channelFor(A, tls, undefined);
    expect(fake.made).toHaveLength(1);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('stats()', () => {
  test('sums the channels: count, created, in flight; a fresh snapshot each time', () => {
    const a = pool.channelFor(A, undefined, undefined);
    const b = pool.channelFor(B, undefined, undefined);
    fakeCall(a);
    fakeCall(a);
    const done = fakeCall(b);
    done.settle(true);
    fakeCall(b);
    const stats = pool.stats();
    expect(stats).toMatchObject({ state: 'open', channels: 2, channelsCreated: 2, channelsClosed: 0, inFlight: 3 });
    expect(stats.perChannel.map((c) => [c.target, c.inFlight, c.started, c.succeeded])).toEqual([
      ['a.example:50051', 2, 2, 0],
      ['b.example:50051', 1, 2, 1],
    ]);
    expect(pool.stats()).not.toBe(stats);
  });
});

describe('close()', () => {
  test('moves open -> closing (at once) -> closed, and refuses to be open again', async () => {
    expect(pool.state).toBe('open');
    expect(pool.isOpen).toBe(true);
    const closing = pool.close(undefined);
    expect(pool.state).toBe('closing');
    expect(pool.isOpen).toBe(false);
    await closing;
    expect(pool.state).toBe('closed');
    expect(pool.stats().state).toBe('closed');
  });

  test('is idempotent: concurrent and later callers share one promise', async () => {
    const first = pool.close({ graceMs: 100 });
    const second = pool.close({ graceMs: 5 });
    expect(second).toBe(first);
    await first;
    expect(pool.close(undefined)).toBe(first);
    // Even with bad options once closing began: they are not looked at.
    expect(pool.close({ graceMs: -1 })).toBe(first);
  });

  test('bad options reject and leave the pool open and usable', async () => {
    await expect(pool.close({ graceMs: -1 })).rejects.toThrow(RangeError);
    await expect(pool.close({ graceMs: 'soon' })).rejects.toThrow(TypeError);
    await expect(pool.close({ grace: 1 })).rejects.toThrow(TypeError);
    await expect(pool.close(null)).rejects.toThrow(TypeError);
    expect(pool.state).toBe('open');
    const channel = pool.channelFor(A, undefined, undefined);
    expect(fake.last.closed).toBe(false);
    expect(pool.stats().channels).toBe(1);
    await expect(pool.close({ graceMs: 0 })).resolves.toMatchObject({ drained: 0, cancelled: 0 });
    expect(channel.inFlight).toBe(0);
  });

  test('drains every channel, sums the results, then closes every grpc-js channel', async () => {
    const a = pool.channelFor(A, undefined, undefined);
    const b = pool.channelFor(B, undefined, undefined);
    const quick = fakeCall(a);
    const stuckA = fakeCall(a);
    const stuckB = fakeCall(b);
    setTimeout(() => quick.settle(true), 200);
    const closing = pool.close({ graceMs: 1_000 });
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.made.map((m) => m.channel.closed)).toEqual([false, false]);
    await vi.advanceTimersByTimeAsync(1);
    const result = await closing;
    expect(result).toEqual({ drained: 1, cancelled: 2, durationMs: 1_000 });
    expect(stuckA.cancelForClose).toHaveBeenCalledWith(1_000);
    expect(stuckB.cancelForClose).toHaveBeenCalledWith(1_000);
    expect(fake.made.map((m) => m.channel.closed)).toEqual([true, true]);
    expect(pool.stats()).toMatchObject({ channels: 0, channelsCreated: 2, channelsClosed: 2, inFlight: 0, perChannel: [] });
  });

  test('leaves no timer: the bucket rotation, the breakers and the watchdogs are gone', async () => {
    const channel = pool.channelFor(A, undefined, undefined);
    const breaker = breakerOf(channel, '/pkg.Svc/Get', resolveBreaker({ volumeThreshold: 1 }) as Resolved<BreakerOptions>);
    breaker.record('failure', 1);
    fake.last.setState(connectivityState.CONNECTING);
    // Rotation interval, breaker reset timeout, connect watchdog.
    expect(vi.getTimerCount()).toBe(3);
    await pool.close({ graceMs: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  test('runs the close hooks once the pool has closed, once; a removed hook does not run', async () => {
    const order: string[] = [];
    pool.onClosed(() => order.push(`hook in state ${pool.state}`));
    const removed = vi.fn();
    const remove = pool.onClosed(removed);
    remove();
    await pool.close(undefined);
    await pool.close(undefined);
    expect(order).toEqual(['hook in state closed']);
    expect(removed).not.toHaveBeenCalled();
  });

  test('drops every event listener', async () => {
    const sources = [pool.onRetry, pool.onBreakerStateChange, pool.onChannelStateChange, pool.onChannelReplaced];
    for (const source of sources) source.subscribe(() => {});
    expect(sources.map((s) => s.hasListeners)).toEqual([true, true, true, true]);
    await pool.close(undefined);
    expect(sources.map((s) => s.hasListeners)).toEqual([false, false, false, false]);
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
